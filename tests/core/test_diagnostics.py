"""The dashboard's diagnostics, against hand-computed values."""

from __future__ import annotations

import math

import numpy as np

from curriculum_core import (
    DiscountedDumpUcb,
    DumpUcb,
    RunStats,
    Sec,
    exploration_bonus,
    saturated,
    scores,
    starved,
    ucb_scores,
)


def test_the_bonus_is_what_ucb_adds_to_the_signal() -> None:
    stats = RunStats(n=np.array([3.0, 0.0]), window_mean=np.array([0.5, 0.0]))
    bonus = exploration_bonus(DumpUcb(c=2.0), stats)
    np.testing.assert_allclose(
        bonus, [2 * math.sqrt(2 * math.log(4) / 4), 2 * math.sqrt(2 * math.log(4))]
    )
    np.testing.assert_allclose(ucb_scores(stats, 2.0) - stats.window_mean, bonus)
    assert exploration_bonus(Sec(), stats).tolist() == [0.0, 0.0]


def test_the_discounted_bonus_reads_the_strategy_state() -> None:
    """dump-ducb's bonus comes from its discounted counts (N = [3, 0], total 3), not from
    the cumulative ``n``; with no state it is the bonus of a run with nothing reported."""
    stats = RunStats(n=np.array([30.0, 0.0]), window_mean=np.array([0.5, 0.0]))
    ducb = DiscountedDumpUcb(c=2.0)
    state = np.array([3.0, 0.0, 1.5, 0.0])
    bonus = exploration_bonus(ducb, stats, state)
    np.testing.assert_allclose(
        bonus, [2 * math.sqrt(2 * math.log(4) / 4), 2 * math.sqrt(2 * math.log(4))]
    )
    np.testing.assert_allclose(scores(ducb, stats, state) - [0.5, 0.0], bonus)
    assert exploration_bonus(ducb, stats).tolist() == [0.0, 0.0]


def test_starved_is_under_a_tenth_of_the_uniform_share() -> None:
    assert starved(np.array([0.033, 0.034, 0.933])).tolist() == [True, False, False]


def test_saturated_needs_enough_samples_and_no_signal() -> None:
    stats = RunStats(
        n=np.array([16.0, 15.0, 400.0, 400.0]), window_mean=np.array([0.0, 0.0, 0.01, 0.02])
    )
    assert saturated(DumpUcb(), stats).tolist() == [True, False, True, False]
    # a window shorter than 16 needs only to be full
    short = RunStats(n=np.array([4.0, 3.0]), window_mean=np.zeros(2))
    assert saturated(DumpUcb(window=4), short).tolist() == [True, False]
