"""What the verl tests share: a train file as verl's examples make them, and verl's config
composed from the YAML it ships (imported only where verl is installed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SOURCES = ["easy", "hard", "mid"]


def write_train_file(folder: Path, rows_per_source: int = 8) -> str:
    """A parquet file of verl's RL data format: ``rows_per_source`` rows of each source."""
    import pandas as pd

    rows = [
        {
            "data_source": source,
            "prompt": [{"role": "user", "content": f"{source} question {i}"}],
            "reward_model": {"style": "rule", "ground_truth": str(i)},
            "extra_info": {"index": k * rows_per_source + i},
        }
        for k, source in enumerate(SOURCES)
        for i in range(rows_per_source)
    ]
    path = folder / "train.parquet"
    pd.DataFrame(rows).to_parquet(path)
    return str(path)


def compose(overrides: list[str]) -> Any:
    """verl's ``ppo_trainer`` config with Hydra command-line ``overrides``."""
    import verl
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    config_dir = Path(verl.__file__).parent / "trainer" / "config"
    with initialize_config_dir(config_dir=str(config_dir), version_base=None):
        return hydra_compose("ppo_trainer", overrides=overrides)


class SeenOnSave:
    """A verl ``trainer.checkpoint_callback_class`` (an upload callback's place): records,
    when verl calls ``on_save``, the step marked latest and what the step's folder holds."""

    seen: list[dict[str, Any]] = []  # noqa: RUF012 - one list for the test process

    def __init__(self, config: Any = None) -> None:
        self.config = config

    def on_save(self, trainer: Any, global_step: int, checkpoint_dir: str, **kwargs: Any) -> None:
        folder = Path(checkpoint_dir)
        latest = folder.parent / "latest_checkpointed_iteration.txt"
        curriculum = folder / "curriculum.json"
        self.seen.append(
            {
                "step": global_step,
                "latest": latest.read_text() if latest.exists() else None,
                "curriculum": curriculum.read_text() if curriculum.exists() else None,
            }
        )
