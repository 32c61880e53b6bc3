"""Charts of a run from its ``metrics.jsonl``: sampling weights and test reward over steps."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt
import numpy as np

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


def moving_average(values: list[float], span: int) -> np.ndarray:
    """Trailing mean over the last ``span`` values (fewer at the start), same length."""
    x = np.asarray(values, dtype=np.float64)
    sums = np.cumsum(np.concatenate([[0.0], x]))
    counts = np.minimum(np.arange(1, x.size + 1), span)
    return (sums[1:] - sums[np.arange(1, x.size + 1) - counts]) / counts


def _plot(
    data: dict[str, tuple[list[int], list[float]]],
    title: str,
    ylabel: str,
    path: Path,
    smooth: int = 1,
) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, (steps, values) in data.items():
        if smooth > 1:
            # per-step weights jump with every report; the trend is what a reader wants
            (raw,) = ax.plot(steps, values, alpha=0.15, linewidth=0.8)
            ax.plot(steps, moving_average(values, smooth), label=name, color=raw.get_color())
        else:
            ax.plot(steps, values, label=name)
    ax.set(title=title, xlabel="step", ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_means(
    curves: dict[str, tuple[list[int], list[float]]], title: str, path: str | Path
) -> Path:
    """One chart of several runs' mean test reward over steps (label -> steps, values)."""
    return _plot(curves, title, "mean test reward", Path(path))


def write_report(metrics_path: str | Path, out_dir: str | Path) -> list[Path]:
    """Write ``weights.png`` and ``test_reward.png`` into ``out_dir``; returns their paths."""
    records = read_metrics(metrics_path)
    out_dir = Path(out_dir)
    return [
        _plot(
            series(records, "weight/"),
            "Sampling weight per distribution (faint: per step; bold: mean of 50 steps)",
            "probability",
            out_dir / "weights.png",
            smooth=50,
        ),
        _plot(
            series(records, "eval/"),
            "Greedy test reward per distribution",
            "mean reward",
            out_dir / "test_reward.png",
        ),
    ]
