"""The rival strategies and DUMP's remedies against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from curriculum_core import (
    BatchSummary,
    DiscountedDumpUcb,
    DumpUcb,
    Exp3S,
    LearningProgress,
    RunStats,
    Sec,
    advance,
    initial_state,
    scores,
    weights,
)

NAN = float("nan")


def _batch(index: list[int], abs_adv: list[float], reward: list[float]) -> BatchSummary:
    return BatchSummary(
        index=np.array(index),
        count=np.full(len(index), 8.0),
        mean_abs_advantage=np.array(abs_adv),
        mean_reward=np.array(reward),
    )


def test_sec_moves_q_towards_mean_abs_advantage() -> None:
    """lr = 0.5: q = [0, 0, 0] -> [0.5, 0, 0.2] after |A| = 1.0 on 0 and 0.4 on 2, then
    q_0 = 0.5 * 0.5 + 0.5 * 0.2 = 0.35; p = softmax([0.35, 0, 0.2] / 0.4)."""
    sec = Sec()
    stats = RunStats.empty(3)
    state = initial_state(sec, 3)
    state = advance(sec, state, _batch([0, 2], [1.0, 0.4], [NAN, NAN]))
    state = advance(sec, state, _batch([0], [0.2], [NAN]))
    np.testing.assert_allclose(state, [0.35, 0.0, 0.2])
    np.testing.assert_allclose(
        weights(sec, stats, state), [0.4752510, 0.1981141, 0.3266349], atol=1e-7
    )
    np.testing.assert_allclose(scores(sec, stats, state), [0.35, 0.0, 0.2])


def test_discounted_ucb_by_hand() -> None:
    """horizon = 16. Report 1 (16 samples): 0 and 1 get 8 each, |A| 1.0 and 0.5, so
    N = [8, 8, 0], S = [8, 4, 0]. Report 2 (8 samples) decays both by d = exp(-8 / 16), then
    0 gets 8 at |A| 0.25: N = [8d + 8, 8d, 0], S = [8d + 2, 4d, 0]. Means S / N =
    [0.5331555, 0.5, 0]; total N = 17.7044906, bonus sqrt(2 ln(N + 1) / (N_j + 1)); the
    never-seen 2 has the largest bonus, 2.4202329, and nearly all the weight."""
    ducb = DiscountedDumpUcb(horizon=16.0)
    stats = RunStats.empty(3)
    state = initial_state(ducb, 3)
    state = advance(ducb, state, _batch([0, 1], [1.0, 0.5], [NAN, NAN]))
    np.testing.assert_allclose(state, [8, 8, 0, 8, 4, 0])
    state = advance(ducb, state, _batch([0], [0.25], [NAN]))
    d = np.exp(-0.5)
    np.testing.assert_allclose(state, [8 * d + 8, 8 * d, 0, 8 * d + 2, 4 * d, 0])
    np.testing.assert_allclose(
        scores(ducb, stats, state), [1.1834305, 1.5004512, 2.4202329], atol=1e-7
    )
    np.testing.assert_allclose(
        weights(ducb, stats, state), [4.2519655e-06, 1.0124951e-04, 0.9998945], atol=1e-9
    )


def test_discounting_brings_an_idle_arm_back() -> None:
    """An arm mastered early (|A| = 0) and then left alone: under DUMP its score stays
    below a busy arm's; with discounting its count fades until its bonus wins."""
    stats = RunStats.empty(2)
    ducb = DiscountedDumpUcb(horizon=64.0)
    state = initial_state(ducb, 2)
    state = advance(ducb, state, _batch([0, 1], [0.0, 0.8], [NAN, NAN]))
    first = weights(ducb, stats, state)[0]
    for _ in range(40):
        state = advance(ducb, state, _batch([1], [0.8], [NAN]))
    assert first < 0.01
    assert weights(ducb, stats, state)[0] > 0.5


def test_learning_progress_is_a_moving_average_of_reward_changes() -> None:
    """alpha = 0.1, rewards of 0: 0.5, 0.7, 0.6 -> Q = 0.1 * 0.2 = 0.02, then
    0.1 * (-0.1) + 0.9 * 0.02 = 0.008; 1 reports 0.2 twice -> Q = 0.
    p = 0.9 * softmax([0.008, 0] / 0.05) + 0.1 / 2 = [0.5359234, 0.4640766]."""
    lp = LearningProgress()
    state = initial_state(lp, 2)
    for r0, r1 in [(0.5, 0.2), (0.7, 0.2), (0.6, NAN)]:
        state = advance(lp, state, _batch([0, 1], [0.0, 0.0], [r0, r1]))
    stats = RunStats.empty(2)
    np.testing.assert_allclose(scores(lp, stats, state), [0.008, 0.0], atol=1e-12)
    np.testing.assert_allclose(weights(lp, stats, state), [0.5359234, 0.4640766], atol=1e-7)


def test_exp3s_update_by_hand() -> None:
    """K = 3. Report 1 sets baselines (0.2, 0.6). Report 2: gains 0.3 and -0.1; their 20th
    and 80th percentiles are -0.02 and 0.22, so the rescaled rewards clip to +1 and -1;
    pi = 1/3 each, importance-weighted estimates 3 and -3; u = w + 0.1 * est = [0.3, -0.3, 0];
    fixed share a = 1/2: w_i = log(0.5 e^u_i + 0.25 sum_{j != i} e^u_j), shifted to max 0,
    = [0, -0.1475199, -0.0820646]; p = 0.95 softmax(w) + 0.05 / 3."""
    bandit = Exp3S(history=4)
    state = initial_state(bandit, 3)
    assert state.shape == (3 * 3 + 3 + 4,)
    state = advance(bandit, state, _batch([0, 1], [0, 0], [0.2, 0.6]))
    np.testing.assert_allclose(weights(bandit, RunStats.empty(3), state), [1 / 3] * 3)
    state = advance(bandit, state, _batch([0, 1], [0, 0], [0.5, 0.5]))
    stats = RunStats.empty(3)
    np.testing.assert_allclose(
        scores(bandit, stats, state), [0.0, -0.1475199, -0.0820646], atol=1e-7
    )
    np.testing.assert_allclose(
        weights(bandit, stats, state), [0.3578952, 0.3110941, 0.3310107], atol=1e-7
    )


def test_exp3s_stays_finite_over_many_updates() -> None:
    bandit = Exp3S()
    rng = np.random.default_rng(0)
    state = initial_state(bandit, 50)
    for _ in range(500):
        idx = rng.choice(50, size=8, replace=False)
        state = advance(bandit, state, _batch(idx.tolist(), [0] * 8, rng.random(8).tolist()))
    p = weights(bandit, RunStats.empty(50), state)
    assert np.all(np.isfinite(p)) and p.sum() == pytest.approx(1.0)
    assert p.min() >= 0.05 / 50 - 1e-12


def test_floor_mixes_with_uniform() -> None:
    """floor = 0.2: p = 0.8 * softmax + 0.1 each; from [~0, ~1] -> [0.1000270, 0.8999730]."""
    stats = RunStats(n=np.array([10.0, 0.0]), window_mean=np.array([0.5, 0.0]))
    base = weights(DumpUcb(), stats)
    floored = weights(DumpUcb(floor=0.2), stats)
    np.testing.assert_allclose(floored, 0.8 * base + 0.1)
    np.testing.assert_allclose(floored, [0.1000270, 0.8999730], atol=1e-7)


def test_regress_bonus_favours_a_falling_reward() -> None:
    """Two distributions alike but for distribution 0's reward having fallen from 0.9 to
    0.4: regress_bonus = 1 adds 0.5 to its score, so p = softmax([0.5, 0] / 0.1)."""
    stats = RunStats(
        n=np.array([100.0, 100.0]),
        window_mean=np.array([0.0, 0.0]),
        reward_mean=np.array([0.4, 0.9]),
        reward_best=np.array([0.9, 0.9]),
    )
    np.testing.assert_allclose(weights(DumpUcb(), stats), [0.5, 0.5])
    e = np.exp(5.0)
    np.testing.assert_allclose(
        weights(DumpUcb(regress_bonus=1.0), stats), [e / (1 + e), 1 / (1 + e)]
    )
