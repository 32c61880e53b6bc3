"""Digit reversal, one distribution per length: ``"4071="`` -> ``"1704"``.

The tiny model's demo task: after a short supervised warm start, short lengths are nearly
solved, middle lengths partly, long ones hardly, so the buckets differ in learnability.
"""

from __future__ import annotations

import random

from trainer_client.grpo.tasks.base import Distribution, Example, make_splits


def reverse_example(length: int, rng: random.Random) -> Example:
    """A random ``length``-digit string (leading zeros allowed) and its reversal."""
    digits = "".join(rng.choice("0123456789") for _ in range(length))
    return Example(prompt=f"{digits}=", answer=digits[::-1])


def reverse_reward(completions: list[str], answers: list[str]) -> list[float]:
    """1.0 when the completion, stripped of surrounding whitespace, is exactly the answer.

    >>> reverse_reward(["1704", " 1704\\n", "1740", "17 04", ""], ["1704"] * 5)
    [1.0, 1.0, 0.0, 0.0, 0.0]
    """
    return [float(c.strip() == a) for c, a in zip(completions, answers, strict=True)]


def reverse_distributions(
    lengths: list[int], seed: int, n_train: int, n_test: int
) -> list[Distribution]:
    """One distribution ``rev-<length>`` per length, each from its own seeded generator."""
    out = []
    for length in lengths:
        rng = random.Random(f"reverse-{length}-{seed}")
        train, test = make_splits(lambda r, n=length: reverse_example(n, r), rng, n_train, n_test)
        out.append(Distribution(f"rev-{length}", train, test, reverse_reward))
    return out
