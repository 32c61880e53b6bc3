"""dump-guard (:class:`curriculum_core.DumpGuard`) against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from curriculum_core import DumpGuard, DumpUcb, RunModel, RunStats, strategy_from_dict, weights
from curriculum_core.diagnostics import exploration_bonus

N = np.array([100.0, 300.0, 600.0])
L = np.array([0.6, 0.2, 0.0])


def _stats(mean: list[float], best: list[float]) -> RunStats:
    return RunStats(n=N, window_mean=L, reward_mean=np.array(mean), reward_best=np.array(best))


def _softmax(x: list[float], tau: float) -> np.ndarray:
    e = np.exp((np.array(x) - max(x)) / tau)
    return e / e.sum()


def _bonus(n: float) -> float:
    return math.sqrt(2 * math.log(1001) / (n + 1))


@pytest.mark.parametrize("regress_bonus", [0.0, 1.0, 5.0])
def test_with_no_fall_beyond_the_tolerance_it_is_dump_ucb(regress_bonus: float) -> None:
    """No reward below its best by more than guard_tol: DUMP's weights, whatever the bonus."""
    stats = _stats([0.5, 0.9, 0.0], [0.55, 0.95, 0.1])  # falls of 0.05 and 0.1: noise
    guard = DumpGuard(regress_bonus=regress_bonus)
    assert guard.guard(stats) == 0.0
    np.testing.assert_allclose(weights(guard, stats), weights(DumpUcb(), stats), rtol=0, atol=1e-15)


def test_a_fall_raises_the_temperature_and_the_falling_bucket_score() -> None:
    """A fall of 0.15 (tol 0.1, width 0.1) engages half the guard: tau 0.1 + 0.5 * 0.4, and
    half of the fall counts in the bucket's score: 0.5 * 0.15."""
    stats = _stats([0.8, 0.25, 0.0], [0.8, 0.4, 0.0])
    guard = DumpGuard()
    assert guard.guard(stats) == pytest.approx(0.5)
    assert guard.temperature(stats) == pytest.approx(0.3)
    score = [0.6 + _bonus(100), 0.2 + _bonus(300) + 0.075, 0.0 + _bonus(600)]
    np.testing.assert_allclose(guard.scores(stats, np.zeros(0)), score, rtol=1e-12)
    np.testing.assert_allclose(weights(guard, stats), _softmax(score, 0.3), rtol=1e-12)


def test_a_fall_past_tol_plus_width_engages_it_fully() -> None:
    stats = _stats([0.0, 0.9, 0.0], [0.5, 0.9, 0.0])
    guard = DumpGuard(tau_guard=0.7, regress_bonus=2.0)
    assert guard.guard(stats) == 1.0
    score = [0.6 + _bonus(100) + 2 * 0.5, 0.2 + _bonus(300), _bonus(600)]
    np.testing.assert_allclose(weights(guard, stats), _softmax(score, 0.7), rtol=1e-12)


def test_the_guard_widens_the_batch() -> None:
    """The same scores, guard on: the largest weight falls and the smallest rises."""
    calm = _stats([0.5, 0.5, 0.0], [0.5, 0.5, 0.0])
    falling = _stats([0.5, 0.5, 0.0], [0.5, 0.5, 0.3])  # only the third bucket fell
    guard = DumpGuard(regress_bonus=0.0)
    before, after = weights(guard, calm), weights(guard, falling)
    assert after.max() < before.max()
    assert after.min() > before.min()


def test_it_is_driven_by_the_rewards_a_run_model_keeps() -> None:
    """Through RunModel: a bucket whose rewards fall from 1 to 0 engages the guard."""
    run = RunModel(["a", "b"], {"name": "dump-guard", "reward_alpha": 0.5})
    run.apply("r0", {"a": [1.0, -1.0], "b": [0.0, 0.0]}, {"a": [1, 0], "b": [1, 1]})
    assert run.strategy.guard(run.stats()) == 0.0
    run.apply("r1", {"b": [0.0, 0.0]}, {"b": [0, 0]})  # b: mean 0.5, best 1: fall 0.5
    stats = run.stats()
    assert stats.reward_best[1] == 1.0 and stats.reward_mean[1] == 0.5
    assert run.strategy.guard(stats) == 1.0


def test_a_hopeless_buckets_lucky_first_batch_earns_no_bonus() -> None:
    """Through RunModel: a bucket that never learns, whose first report happened to carry one
    success in 16 (best 0.0625), is not read as a skill being lost: dump-ucb's weights."""
    run = RunModel(["learning", "hopeless"], "dump-guard")
    run.apply(
        "r0", {"learning": [1.0, -1.0] * 4}, {"learning": [1, 0] * 4, "hopeless": [1] + [0] * 15}
    )
    for i in range(1, 40):  # the hopeless bucket's average decays towards 0
        run.apply(
            f"r{i}",
            {"learning": [1.0, -1.0] * 4, "hopeless": [0.0] * 16},
            {"learning": [1, 0] * 4, "hopeless": [0] * 16},
        )
    stats = run.stats()
    assert stats.reward_best[1] == 0.0625 and stats.reward_mean[1] < 0.002
    np.testing.assert_allclose(
        weights(run.strategy, stats), weights(DumpUcb(), stats), rtol=0, atol=1e-15
    )
    # and a fall past the tolerance still earns the whole bonus
    stats = RunStats(
        n=stats.n,
        window_mean=stats.window_mean,
        reward_mean=np.array([0.5, 0.0]),
        reward_best=np.array([0.5, 0.3]),
    )
    score = DumpUcb().scores(stats, np.zeros(0)) + np.array([0.0, 0.3])
    np.testing.assert_allclose(run.strategy.scores(stats, np.zeros(0)), score, rtol=1e-12)


def test_wire_form_and_bonus() -> None:
    guard = strategy_from_dict({"name": "dump-guard", "c": 0.5})
    assert isinstance(guard, DumpGuard) and guard.tau == 0.1 and guard.tau_guard == 0.5
    stats = _stats([0, 0, 0], [0, 0, 0])
    np.testing.assert_allclose(
        exploration_bonus(guard, stats), [0.5 * _bonus(n) for n in N], rtol=1e-12
    )
    with pytest.raises(ValueError, match="guard_width"):
        strategy_from_dict({"name": "dump-guard", "guard_width": 0})


def test_a_tiny_guard_width_is_a_step_not_an_overflow() -> None:
    """guard_width may be as small as a float gets: the gate is then a step at guard_tol,
    computed without overflow (numpy's warning is an error under pytest)."""
    guard = DumpGuard(guard_width=5e-324)
    np.testing.assert_array_equal(guard.gate(np.array([0.0, 0.1, 0.3, 1e38])), [0, 0, 1, 1])
    stats = _stats([0.0, 0.9, 0.0], [0.5, 0.9, 0.0])
    assert guard.guard(stats) == 1.0
    assert np.isfinite(weights(guard, stats)).all()
