"""Charts of a run from its ``metrics.jsonl``: sampling weights and test reward over steps."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt

from trainer_client.grpo.metrics import read_metrics


def series(records: list[dict], prefix: str) -> dict[str, tuple[list[int], list[float]]]:
    """Per distribution, the steps and values of every ``<prefix><name>`` key, in order."""
    out: dict[str, tuple[list[int], list[float]]] = {}
    for record in records:
        for key, value in record.items():
            if key.startswith(prefix) and key != f"{prefix}mean":
                steps, values = out.setdefault(key[len(prefix) :], ([], []))
                steps.append(record["step"])
                values.append(value)
    return out


def _plot(
    data: dict[str, tuple[list[int], list[float]]], title: str, ylabel: str, path: Path
) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, (steps, values) in data.items():
        ax.plot(steps, values, label=name)
    ax.set(title=title, xlabel="step", ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(metrics_path: str | Path, out_dir: str | Path) -> list[Path]:
    """Write ``weights.png`` and ``test_reward.png`` into ``out_dir``; returns their paths."""
    records = read_metrics(metrics_path)
    out_dir = Path(out_dir)
    return [
        _plot(
            series(records, "weight/"),
            "Sampling weight per distribution",
            "probability",
            out_dir / "weights.png",
        ),
        _plot(
            series(records, "eval/"),
            "Greedy test reward per distribution",
            "mean reward",
            out_dir / "test_reward.png",
        ),
    ]
