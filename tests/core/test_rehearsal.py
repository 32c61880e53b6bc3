"""dump-rehearse (:class:`curriculum_core.DumpRehearse`) against values worked out by hand.

Every report here gives each distribution it carries 8 samples, so a gap is 8 samples per
report that left the distribution out. ``memory = 0.5`` and ``ref_alpha = 0.5`` keep the
sums short: after two returns the discounted count of returns is ``0.5 + 1 = 1.5``, the
least that is judged.
"""

from __future__ import annotations

import numpy as np
import pytest

from curriculum_core import (
    BatchSummary,
    DumpRehearse,
    DumpUcb,
    RunStats,
    advance,
    initial_state,
    strategy_from_dict,
    weights,
)
from curriculum_core.rehearsal import PARTS

NAN = float("nan")

STATS = RunStats(n=np.array([16.0, 48.0]), window_mean=np.array([0.5, 0.25]))
"""What DUMP reads (the window means and counts); the rehearsal state is separate."""


def _batch(index: list[int], reward: list[float], count: float = 8.0) -> BatchSummary:
    return BatchSummary(
        index=np.array(index, dtype=np.int64),
        count=np.full(len(index), count),
        mean_abs_advantage=np.zeros(len(index)),
        mean_reward=np.array(reward, dtype=np.float64),
    )


def _fold(
    strategy: DumpRehearse, k: int, reports: list[tuple[list[int], list[float]]]
) -> np.ndarray:
    state = initial_state(strategy, k)
    for index, reward in reports:
        state = advance(strategy, state, _batch(index, reward))
    return state


def _parts(state: np.ndarray) -> dict[str, list[float]]:
    """The state's blocks by name (idle, ref, seen, gap_drop, gap_gap, drop_drop, returns)."""
    return {
        name: block.tolist() for name, block in zip(PARTS, np.split(state, len(PARTS)), strict=True)
    }


def _dump(strategy: DumpRehearse) -> DumpUcb:
    """DUMP with the same constants: what dump-rehearse is without rehearsal."""
    return DumpUcb(window=strategy.window, c=strategy.c, tau=strategy.tau)


def _returns_twice(first: float, second: float) -> list[tuple[list[int], list[float]]]:
    """Distribution 0 reports ``1.0``, is left out 8 samples and returns with ``first``, is
    left out 16 samples and returns with ``second``; distribution 1 (0.5) is never left out."""
    return [
        ([0, 1], [1.0, 0.5]),
        ([1], [0.5]),
        ([0, 1], [first, 0.5]),
        ([1], [0.5]),
        ([1], [0.5]),
        ([0, 1], [second, 0.5]),
    ]


def test_a_bucket_whose_reward_falls_over_its_gaps_gets_a_share() -> None:
    """confidence = 14, rehearse = 0.8, K = 2. Distribution 0 returns after 8 samples at 0.6
    (drop 1 - 0.6 = 0.4; ref -> 1 + 0.5 (0.6 - 1) = 0.8), then after 16 at 0.2 (drop 0.6;
    ref -> 0.5). Sums: gd = 0.5 * 8 * 0.4 + 16 * 0.6 = 11.2, gg = 0.5 * 64 + 256 = 288,
    dd = 0.5 * 0.16 + 0.36 = 0.44, returns 1.5. Rate 11.2 / 288 = 7 / 180; residual
    variance (0.44 - 11.2 * 7 / 180) / (1.5 - 1) = 2 / 225; se sqrt(2 / 225 / 288) = 1 / 180;
    t = 7. m_0 = 0.8 * clip(7 / 14, 0, 1) / 2 = 0.2; p = 0.8 softmax(UCB / tau) + [0.2, 0]."""
    strategy = DumpRehearse(memory=0.5, ref_alpha=0.5, confidence=14.0, rehearse=0.8)
    state = _fold(strategy, 2, _returns_twice(0.6, 0.2))
    got = _parts(state)
    assert got["idle"] == [0.0, 0.0] and got["seen"] == [1.0, 1.0]
    assert got["ref"] == pytest.approx([0.5, 0.5], abs=1e-15)
    assert got["gap_drop"] == pytest.approx([11.2, 0.0], abs=1e-12)
    assert got["gap_gap"] == [288.0, 0.0] and got["returns"] == [1.5, 0.0]
    assert got["drop_drop"] == pytest.approx([0.44, 0.0], abs=1e-15)
    np.testing.assert_allclose(strategy.forgetting(state), [7.0, 0.0], rtol=1e-9)
    np.testing.assert_allclose(strategy.shares(state), [0.2, 0.0], rtol=1e-9)
    dump = weights(_dump(strategy), STATS)
    expected = 0.8 * dump + [0.2, 0.0]
    np.testing.assert_allclose(weights(strategy, STATS, state), expected, rtol=1e-12)
    assert weights(strategy, STATS, state)[0] > dump[0]
    # the gate is clipped: with confidence below t the share is the whole rehearse / K
    full = DumpRehearse(memory=0.5, ref_alpha=0.5, confidence=7.0 / 2, rehearse=0.8)
    np.testing.assert_allclose(full.shares(state), [0.4, 0.0], rtol=1e-12)
    # the smallest positive confidence gates fully too, without overflowing t / confidence
    # (pytest turns numpy's overflow warning into an error)
    tiny = DumpRehearse(memory=0.5, ref_alpha=0.5, confidence=5e-324, rehearse=0.8)
    np.testing.assert_allclose(tiny.shares(state), [0.4, 0.0], rtol=1e-12)


def test_a_bucket_whose_reward_rises_gets_no_share_and_dumps_weights() -> None:
    """c = 0.5, tau = 0.3, window = 50. Distribution 0 returns after 8 samples at 0.4 from
    0.2 (drop -0.2; ref -> 0.3), then after 16 at 0.4 (drop -0.1). gd = 0.5 * 8 * (-0.2) +
    16 * (-0.1) = -2.4, gg = 288, dd = 0.5 * 0.04 + 0.01 = 0.03: rate -1 / 120 < 0, so t < 0
    and m = 0, and the weights are DUMP's with the same c, tau and window, to the bit."""
    strategy = DumpRehearse(memory=0.5, ref_alpha=0.5, c=0.5, tau=0.3, window=50)
    reports = _returns_twice(0.4, 0.4)
    reports[0] = ([0, 1], [0.2, 0.5])
    state = _fold(strategy, 2, reports)
    got = _parts(state)
    assert got["ref"] == pytest.approx([0.35, 0.5], abs=1e-15)  # 0.2 -> 0.3 -> 0.35
    assert got["gap_drop"] == pytest.approx([-2.4, 0.0], abs=1e-12)
    assert got["drop_drop"] == pytest.approx([0.03, 0.0], abs=1e-15)
    assert got["returns"] == [1.5, 0.0]
    t = strategy.forgetting(state)
    # residual variance (0.03 - 2.4^2 / 288) / 0.5 = 0.02, se sqrt(0.02 / 288) = 1 / 120
    np.testing.assert_allclose(t, [-1.0, 0.0], rtol=1e-9)
    assert strategy.shares(state).tolist() == [0.0, 0.0]
    stats = RunStats(n=np.array([16.0, 48.0]), window_mean=np.array([0.5, 0.25]))
    assert weights(strategy, stats, state).tolist() == weights(_dump(strategy), stats).tolist()


def test_a_bucket_that_returned_once_is_not_judged() -> None:
    """Distribution 0 falls from 1.0 to 0.0 after one gap of 8 samples and is never left
    out again: gd = 8, gg = 64, dd = 1, returns 1 < 1.5, so t = 0 and no share."""
    strategy = DumpRehearse(memory=0.5, ref_alpha=0.5)
    state = _fold(strategy, 2, _returns_twice(0.0, 0.0)[:3] + [([0, 1], [0.0, 0.5])] * 3)
    got = _parts(state)
    assert got["gap_drop"] == [8.0, 0.0] and got["gap_gap"] == [64.0, 0.0]
    assert got["drop_drop"] == [1.0, 0.0] and got["returns"] == [1.0, 0.0]
    assert strategy.forgetting(state).tolist() == [0.0, 0.0]
    assert strategy.shares(state).tolist() == [0.0, 0.0]
    assert weights(strategy, STATS, state).tolist() == weights(_dump(strategy), STATS).tolist()


def test_reports_without_rewards_teach_nothing() -> None:
    """A report without rewards (NaN) leaves ref, seen and the sums as they were; the idle
    count still grows for the distributions it leaves out (by its 8 + 8 samples) and is reset
    for those it carries. A reward for a distribution without samples (count 0) is not a
    return either. With no rewards at all the weights are DUMP's."""
    strategy = DumpRehearse(memory=0.5, ref_alpha=0.5)
    before = _fold(strategy, 3, [*_returns_twice(0.6, 0.2)[:3], ([1], [0.5])])
    assert _parts(before)["idle"] == [8.0, 0.0, 48.0]  # 2 was never reported: 16 + 8 + 16 + 8
    after = advance(strategy, before, _batch([1, 2], [NAN, NAN]))
    got, was = _parts(after), _parts(before)
    assert got["idle"] == [24.0, 0.0, 0.0]
    for name in PARTS[1:]:
        assert got[name] == was[name], name
    rewards_only = BatchSummary(
        index=np.array([1, 0]),
        count=np.array([8.0, 0.0]),
        mean_abs_advantage=np.zeros(2),
        mean_reward=np.array([NAN, 0.0]),
    )
    later = _parts(advance(strategy, after, rewards_only))
    assert later["idle"] == [32.0, 0.0, 8.0] and later["returns"] == got["returns"]
    assert later["ref"] == got["ref"]
    blind = initial_state(strategy, 3)
    for index in ([0, 1], [2], [0, 2], [1]):
        blind = advance(strategy, blind, _batch(index, [NAN] * len(index)))
    assert _parts(blind)["seen"] == [0.0, 0.0, 0.0] and not blind[3:].any()
    stats = RunStats(n=np.array([16.0, 16.0, 16.0]), window_mean=np.array([0.1, 0.5, 0.0]))
    assert weights(strategy, stats, blind).tolist() == weights(_dump(strategy), stats).tolist()


def test_an_exact_fit_with_a_positive_rate_gets_the_full_share() -> None:
    """Drops proportional to the gaps, in binary-exact numbers: 0.25 after 8 samples
    (1 -> 0.75, ref -> 0.875), 0.5 after 16 (-> 0.375, ref -> 0.625). gd = 0.5 * 2 + 8 = 9,
    gg = 288, dd = 0.5 * 0.0625 + 0.25 = 0.28125 = gd^2 / gg: no residual at all, rate 1/32,
    so t = inf and m_0 = rehearse / K = 0.5 (the confidence does not matter)."""
    strategy = DumpRehearse(memory=0.5, ref_alpha=0.5, confidence=1e6)
    state = _fold(strategy, 2, _returns_twice(0.75, 0.375))
    got = _parts(state)
    assert got["ref"] == [0.625, 0.5] and got["gap_drop"] == [9.0, 0.0]
    assert got["drop_drop"] == [0.28125, 0.0]
    assert strategy.forgetting(state).tolist() == [np.inf, 0.0]
    assert strategy.shares(state).tolist() == [0.5, 0.0]
    p = weights(strategy, STATS, state)
    np.testing.assert_allclose(p, 0.5 * weights(_dump(strategy), STATS) + [0.5, 0.0], rtol=1e-12)


def test_an_exact_fit_with_zero_rate_gives_no_share_and_no_nan() -> None:
    """The reward comes back unchanged after both gaps: gd = 0, dd = 0, gg = 288. Rate 0,
    residual 0, standard error 0: t is 0 (not 0 / 0), and nothing is rehearsed."""
    strategy = DumpRehearse(memory=0.5, ref_alpha=0.5)
    state = _fold(strategy, 2, _returns_twice(1.0, 1.0))
    got = _parts(state)
    assert got["gap_drop"] == [0.0, 0.0] and got["drop_drop"] == [0.0, 0.0]
    assert got["gap_gap"] == [288.0, 0.0] and got["returns"] == [1.5, 0.0]
    with np.errstate(all="raise"):
        t = strategy.forgetting(state)
        shares = strategy.shares(state)
    assert t.tolist() == [0.0, 0.0] and shares.tolist() == [0.0, 0.0]
    assert weights(strategy, STATS, state).tolist() == weights(_dump(strategy), STATS).tolist()


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"memory": 0.5},
        {"memory": 1.0, "confidence": 1e-3, "rehearse": 1.0},
        {"memory": 0.5, "ref_alpha": 1.0, "confidence": 0.5, "tau": 1e-3, "floor": 0.2},
        {"c": 0.0, "rehearse": 0.0},
    ],
    ids=["defaults", "no-memory", "full-memory", "sharp", "no-rehearsal"],
)
def test_weights_sum_to_one_and_stay_finite(params: dict[str, float]) -> None:
    """Random reports (random subsets, sizes and rewards, some without rewards) over K = 5:
    after each, the weights are finite, at least the shares, and sum to 1."""
    strategy = strategy_from_dict({"name": "dump-rehearse", **params})
    assert isinstance(strategy, DumpRehearse)
    rng = np.random.default_rng(len(params))
    k = 5
    state = initial_state(strategy, k)
    judged = 0
    for _ in range(300):
        index = rng.choice(k, size=int(rng.integers(1, k + 1)), replace=False)
        reward = rng.random(index.size)
        reward[rng.random(index.size) < 0.2] = NAN
        batch = BatchSummary(
            index=index,
            count=rng.integers(1, 20, size=index.size).astype(float),
            mean_abs_advantage=rng.random(index.size),
            mean_reward=reward,
        )
        state = advance(strategy, state, batch)
        stats = RunStats(n=rng.integers(0, 500, size=k).astype(float), window_mean=rng.random(k))
        p = weights(strategy, stats, state)
        shares = strategy.shares(state)
        assert np.all(np.isfinite(p)) and p.sum() == pytest.approx(1.0, abs=1e-12)
        assert np.all(p >= (1 - strategy.floor) * shares - 1e-15)
        assert np.all(np.isfinite(state)) and 0 <= shares.sum() <= strategy.rehearse + 1e-12
        judged += int(np.count_nonzero(strategy.forgetting(state)))
    if strategy.memory >= 0.5:
        assert judged > 0  # the state moved: some distributions were judged
