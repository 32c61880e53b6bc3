"""Turning probabilities into a batch: one distribution drawn per slot."""

from __future__ import annotations

import numpy as np

ROUND_STREAM = 0x726F756E64
"""Tells the entropy of a refill round's generator (``b"round"``) apart from any other
stream derived from ``(seed, step, batch_size, ...)``, such as the prompts' skip draws."""


def plan_rng(seed: int, step: int, batch_size: int, round: int = 0) -> np.random.Generator:
    """The generator that composes generation round ``round`` of step ``step``'s batch of a
    run seeded with ``seed``.

    Derived only from its arguments, so every replica that composes the same step from the
    same weights draws the same batch. Round 0 is the step's batch; rounds 1, 2, ... (the
    refills of a trainer that drops groups, over-generation) each draw from a stream of
    their own, and round 0's stream is the one plans had before rounds existed.
    """
    if round == 0:
        return np.random.default_rng([seed, step, batch_size])
    return np.random.default_rng([seed, step, batch_size, ROUND_STREAM, round])


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


def assignment_of_counts(counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The assignment :func:`compose_batch` drew with ``rng``, rebuilt from its counts alone.

    ``counts`` (shape ``(k,)``) is ``counts_of`` the drawn assignment and ``rng`` a generator
    in the state ``compose_batch`` got (``plan_rng`` of the same seed, step and batch size).
    A slot's distribution rises with its uniform draw (the search in a cumulative sum), so
    the slots in the order of their draws take ``counts[0]`` times distribution 0, then
    ``counts[1]`` times distribution 1, and so on; equal draws fall in one distribution, so
    ties cannot cross a boundary. Lets a plan be kept as ``K`` counts, not ``B`` names.
    Returns an int64 array of shape ``(sum(counts),)``.
    """
    counts = np.asarray(counts, dtype=np.int64)
    batch_size = int(counts.sum())
    if batch_size < 1 or counts.min(initial=0) < 0:
        raise ValueError("counts must be non-negative with a positive sum")
    order = np.argsort(rng.random(batch_size), kind="stable")
    assignment = np.empty(batch_size, dtype=np.int64)
    assignment[order] = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
    return assignment


def counts_of(assignment: np.ndarray, k: int) -> np.ndarray:
    """How many slots each of ``k`` distributions got, shape ``(k,)``."""
    return np.bincount(assignment, minlength=k)
