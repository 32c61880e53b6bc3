"""What every task provides: examples, named distributions with train/test splits, a reward."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Example:
    """One prompt and the reference answer its reward function checks against."""

    prompt: str
    answer: str


RewardFn = Callable[[list[str], list[str]], list[float]]
"""``reward(completions, answers) -> rewards``, one float per completion (TRL's shape)."""


@dataclass(frozen=True)
class Distribution:
    """A named prompt distribution: what the scheduler weighs and the batch draws from.

    ``train`` is what GRPO samples prompts from, uniformly; ``test`` is held out (disjoint
    from ``train`` whenever the distribution has enough distinct prompts) and scored with
    greedy decoding.
    """

    name: str
    train: tuple[Example, ...]
    test: tuple[Example, ...]
    reward: RewardFn

    def __post_init__(self) -> None:
        if not self.train or not self.test:
            raise ValueError(f"distribution {self.name!r} needs a non-empty train and test split")


def make_splits(
    sample: Callable[[random.Random], Example], rng: random.Random, n_train: int, n_test: int
) -> tuple[tuple[Example, ...], tuple[Example, ...]]:
    """Draw ``n_test`` distinct test examples, then ``n_train`` train examples not among them.

    Deterministic given ``rng``'s state. When the distribution has too few distinct prompts
    to hold any out (reversing one digit has ten), train falls back to the test examples, so
    that bucket measures memorisation, as it must.
    """
    test: dict[str, Example] = {}
    for _ in range(20 * n_test):
        example = sample(rng)
        test.setdefault(example.prompt, example)
        if len(test) == n_test:
            break
    train: list[Example] = []
    for _ in range(20 * n_train):
        example = sample(rng)
        if example.prompt not in test:
            train.append(example)
            if len(train) == n_train:
                break
    return tuple(train) or tuple(test.values()), tuple(test.values())
