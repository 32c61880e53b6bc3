"""Turning probabilities into a batch: one distribution drawn per slot."""

from __future__ import annotations

import numpy as np


def plan_rng(seed: int, step: int, batch_size: int) -> np.random.Generator:
    """The generator that composes step ``step``'s batch of a run seeded with ``seed``.

    Derived only from its arguments, so every replica that composes the same step from the
    same weights draws the same batch.
    """
    return np.random.default_rng([seed, step, batch_size])


def compose_batch(p: np.ndarray, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """Distribution index for each of ``batch_size`` slots, each drawn independently from ``p``.

    Returns an int64 array of shape ``(batch_size,)``. ``p`` must be non-negative; it is
    renormalised to guard against rounding in stored weights.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    probs = np.asarray(p, dtype=np.float64)
    if probs.ndim != 1 or probs.size == 0 or not np.all(np.isfinite(probs)) or probs.min() < 0:
        raise ValueError("p must be a non-empty 1-D vector of finite, non-negative numbers")
    total = probs.sum()
    if total <= 0:
        raise ValueError("p must have a positive sum")
    cdf = np.cumsum(probs / total)
    cdf[-1] = 1.0
    draws = rng.random(batch_size)
    return np.searchsorted(cdf, draws, side="right").astype(np.int64)


def counts_of(assignment: np.ndarray, k: int) -> np.ndarray:
    """How many slots each of ``k`` distributions got, shape ``(k,)``."""
    return np.bincount(assignment, minlength=k)
