"""Tasks: procedurally generated, seeded prompt distributions, each with its reward function.

``build_distributions`` is the one entry point the trainer uses.
"""

from __future__ import annotations

from trainer_client.grpo.tasks.base import Distribution, Example, RewardFn, make_splits
from trainer_client.grpo.tasks.files import file_distributions
from trainer_client.grpo.tasks.knights_knaves import kk_distributions, kk_reward
from trainer_client.grpo.tasks.reverse import reverse_distributions, reverse_reward

TASKS = ("reverse", "kk", "file")
REWARDS: dict[str, RewardFn] = {"exact": reverse_reward, "kk": kk_reward}
"""Reward functions a data file can name: ``exact`` (stripped string equality) or ``kk``."""


def build_distributions(
    task: str,
    levels: list[int],
    seed: int,
    n_train: int,
    n_test: int,
    data_file: str | None = None,
    file_reward: str = "exact",
) -> list[Distribution]:
    """The run's distributions: ``reverse`` (digit reversal by length), ``kk``
    (Knights-and-Knaves by number of people) or ``file`` (read from ``data_file``)."""
    if task == "reverse":
        return reverse_distributions(levels, seed, n_train, n_test)
    if task == "kk":
        return kk_distributions(levels, seed, n_train, n_test)
    if task == "file":
        if data_file is None:
            raise ValueError("task 'file' needs data_file")
        return file_distributions(data_file, REWARDS[file_reward], seed, n_test)
    raise ValueError(f"unknown task {task!r}; choose one of {TASKS}")


__all__ = [
    "REWARDS",
    "TASKS",
    "Distribution",
    "Example",
    "RewardFn",
    "build_distributions",
    "file_distributions",
    "kk_distributions",
    "kk_reward",
    "make_splits",
    "reverse_distributions",
    "reverse_reward",
]
