"""The scheduling math against values worked out by hand (see each test's arithmetic)."""

from __future__ import annotations

import numpy as np
import pytest

from curriculum_core import (
    DumpUcb,
    RunModel,
    RunStats,
    Uniform,
    assignment_of_counts,
    compose_batch,
    counts_of,
    plan_rng,
    softmax,
    strategy_from_dict,
    strategy_to_dict,
    ucb_scores,
    weights,
)
from curriculum_core.signals import MissingRewards, reward_spread, window_values


def test_empty_start_is_uniform() -> None:
    """All windows empty and N = 0: every bonus is c*sqrt(2 ln 1 / 1) = 0, so p is uniform."""
    p = weights(DumpUcb(), RunStats.empty(4))
    np.testing.assert_allclose(p, [0.25, 0.25, 0.25, 0.25], rtol=0, atol=1e-15)


def test_two_distributions_by_hand() -> None:
    """n = [10, 0], L = [0.5, 0], c = 1, tau = 0.1.

    N = 10, ln 11 = 2.3978953; UCB_1 = 0.5 + sqrt(2 * 2.3978953 / 11) = 1.1602885,
    UCB_2 = 0 + sqrt(2 * 2.3978953 / 1) = 2.1899293;
    p_2 = 1 / (1 + exp((1.1602885 - 2.1899293) / 0.1)) = 0.99996625.
    """
    stats = RunStats(n=np.array([10.0, 0.0]), window_mean=np.array([0.5, 0.0]))
    np.testing.assert_allclose(ucb_scores(stats, 1.0), [1.1602885, 2.1899293], atol=1e-7)
    np.testing.assert_allclose(weights(DumpUcb(), stats), [3.3753e-5, 0.99996625], atol=1e-8)


def test_three_distributions_by_hand() -> None:
    """n = [3, 2, 0], L = [5/6, 0, 0]: N = 5, ln 6 = 1.7917595.

    UCB = [5/6 + sqrt(2 ln 6 / 4), sqrt(2 ln 6 / 3), sqrt(2 ln 6)] = [1.7798426, 1.0929347,
    1.8930185]; softmax over UCB / 0.1 = [0.2437748, 0.0002534, 0.7559718].
    """
    stats = RunStats(n=np.array([3.0, 2.0, 0.0]), window_mean=np.array([5 / 6, 0.0, 0.0]))
    np.testing.assert_allclose(ucb_scores(stats, 1.0), [1.7798426, 1.0929347, 1.8930185], atol=1e-7)
    np.testing.assert_allclose(
        weights(DumpUcb(), stats), [0.2437748, 0.0002534, 0.7559718], atol=1e-7
    )


def test_single_distribution_always_gets_everything() -> None:
    """K = 1: the softmax of one score is 1 whatever the statistics."""
    stats = RunStats(n=np.array([1234.0]), window_mean=np.array([0.7]))
    assert weights(DumpUcb(), stats).tolist() == [1.0]
    assert weights(DumpUcb(), RunStats.empty(1)).tolist() == [1.0]


def test_ten_thousand_distributions() -> None:
    """K = 10,000, distribution 0 has n = 300 and L = 1, the others nothing.

    N = 300, ln 301 = 5.7071103: UCB_0 = 1 + sqrt(2 ln 301 / 301) = 1.1947331, every other
    UCB = sqrt(2 ln 301) = 3.3784938, so p_0 / p_other = exp(-21.837607) and
    p_other = 1 / (9999 + exp(-21.837607)) = 1.0001e-4.
    """
    k = 10_000
    n = np.zeros(k)
    mean = np.zeros(k)
    n[0], mean[0] = 300.0, 1.0
    p = weights(DumpUcb(), RunStats(n=n, window_mean=mean))
    assert p.shape == (k,)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    assert p[0] == pytest.approx(3.2816428e-14, rel=1e-6)
    np.testing.assert_allclose(p[1:], 1.0001000100009673e-4, rtol=1e-9)
    np.testing.assert_allclose(weights(DumpUcb(), RunStats.empty(k)), 1e-4, rtol=1e-12)


def test_c_zero_is_a_softmax_of_window_means() -> None:
    """c = 0 drops the bonus: p = softmax(L / tau); L = [0, 0.1], tau = 0.1 gives 1 : e."""
    stats = RunStats(n=np.array([5.0, 5.0]), window_mean=np.array([0.0, 0.1]))
    e = np.e
    np.testing.assert_allclose(weights(DumpUcb(c=0.0), stats), [1 / (1 + e), e / (1 + e)])


def test_softmax_does_not_overflow_for_tiny_tau() -> None:
    """Scores 0 and 1 with tau = 1e-6 would overflow exp(1e6); the shifted softmax gives 0, 1."""
    np.testing.assert_allclose(softmax(np.array([0.0, 1.0]), 1e-6), [0.0, 1.0])


def test_uniform_ignores_statistics() -> None:
    stats = RunStats(n=np.array([100.0, 0.0, 3.0]), window_mean=np.array([0.9, 0.0, 0.1]))
    np.testing.assert_allclose(weights(Uniform(), stats), [1 / 3, 1 / 3, 1 / 3])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "nope"}, "unknown strategy"),
        ({"name": "dump-ucb", "tau": 0}, "tau must be"),
        ({"name": "dump-ucb", "c": -1}, "c must be"),
        ({"name": "dump-ucb", "window": 0}, "window must be"),
        ({"name": "dump-ucb", "gamma": 1}, "unknown parameter"),
        ({"name": "uniform", "tau": 1}, "unknown parameter"),
        ({"name": "dump-ucb", "signal": "vibes"}, "signal must be one of"),
        ({"name": "dump-ucb", "c": "1.5"}, "c must be a finite number"),
        ({"name": "dump-ucb", "window": 12.5}, "window must be an integer"),
        ({"name": "dump-ucb", "window": True}, "window must be an integer"),
        ({"name": "exp3s", "history": 1}, "history must be between 2 and 100000"),
        ({"name": "sec", "lr": 0}, r"lr must be a finite number in \(0, 1\]"),
        ({"window": 10}, "needs its 'name'"),
    ],
)
def test_bad_strategy_parameters_are_refused(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        strategy_from_dict(data)


def test_strategy_round_trips_through_its_wire_form() -> None:
    strategy = strategy_from_dict({"name": "dump-ucb", "c": 0.5})
    assert strategy_to_dict(strategy) == {
        "name": "dump-ucb", "window": 300, "c": 0.5, "tau": 0.1, "floor": 0.0,
        "regress_bonus": 0.0, "signal": "advantage", "reward_alpha": 0.1,
    }  # fmt: skip
    assert strategy_from_dict(strategy_to_dict(strategy)) == strategy


def test_run_model_keeps_the_last_window_of_absolute_values() -> None:
    """W = 3: after [1, -2] and [3, -4, 0.5] the window is |.| of the last three: 3, 4, 0.5."""
    model = RunModel(["a", "b"], {"name": "dump-ucb", "window": 3})
    assert model.apply("r1", {"a": [1.0, -2.0]})
    assert model.apply("r2", {"a": [3.0, -4.0, 0.5]})
    assert model.window(0).tolist() == [3.0, 4.0, 0.5]
    assert model.window(1).tolist() == []
    result = model.stats()
    assert result.n.tolist() == [5.0, 0.0]
    assert result.window_mean.tolist() == [pytest.approx(2.5), 0.0]


def test_compose_batch_is_deterministic_per_step_and_seed() -> None:
    p = np.array([0.2, 0.3, 0.5])
    a = compose_batch(p, 64, plan_rng(7, 3, 64))
    b = compose_batch(p, 64, plan_rng(7, 3, 64))
    c = compose_batch(p, 64, plan_rng(7, 4, 64))
    assert a.tolist() == b.tolist()
    assert a.tolist() != c.tolist()
    assert counts_of(a, 3).sum() == 64


def test_compose_batch_never_draws_a_zero_weight() -> None:
    p = np.array([0.0, 1.0, 0.0])
    assert set(compose_batch(p, 1000, plan_rng(0, 0, 1000)).tolist()) == {1}


def test_compose_batch_follows_the_weights() -> None:
    """200,000 draws from p = [0.1, 0.2, 0.7]: each frequency within 4 standard errors."""
    p = np.array([0.1, 0.2, 0.7])
    draws = 200_000
    freq = counts_of(compose_batch(p, draws, plan_rng(1, 0, draws)), 3) / draws
    stderr = np.sqrt(p * (1 - p) / draws)
    assert np.all(np.abs(freq - p) < 4 * stderr), freq


@pytest.mark.parametrize("k", [1, 2, 7, 300])
@pytest.mark.parametrize("batch_size", [1, 5, 64, 4096])
def test_counts_and_the_plan_rng_rebuild_the_assignment(k: int, batch_size: int) -> None:
    """A plan kept as its counts gives back exactly the slots compose_batch drew, for weights
    peaked, flat, or with zeros."""
    rng = np.random.default_rng(k * batch_size)
    for p in (rng.dirichlet(np.full(k, 0.3)), np.full(k, 1 / k), np.eye(k)[k // 2]):
        drawn = compose_batch(p, batch_size, plan_rng(11, 5, batch_size))
        counts = counts_of(drawn, k)
        rebuilt = assignment_of_counts(counts, plan_rng(11, 5, batch_size))
        assert rebuilt.tolist() == drawn.tolist()


@pytest.mark.parametrize("p", [[], [0.5, -0.5], [np.nan, 1.0], [0.0, 0.0]])
def test_compose_batch_refuses_bad_probabilities(p: list[float]) -> None:
    with pytest.raises(ValueError):
        compose_batch(np.array(p), 4, plan_rng(0, 0, 4))


def test_reward_spread_by_hand() -> None:
    # mean of [1, 0, 1, 1] is 0.75: distances 0.25, 0.75, 0.25, 0.25
    assert reward_spread([1, 0, 1, 1]) == [0.25, 0.75, 0.25, 0.25]
    assert reward_spread([0.3, 0.3]) == [0.0, 0.0]
    got = window_values(
        "reward-spread", {"a": [1.2, -1.2, 0.3], "b": [0.0]}, {"a": [0.2, 0.8, 0.5], "b": [1.0]}
    )
    assert got["a"] == pytest.approx([0.3, 0.3, 0.0]) and got["b"] == [0.0]
    # the default signal passes the advantages through
    assert window_values("advantage", {"a": [1.2, -1.2]}, None) == {"a": [1.2, -1.2]}
    with pytest.raises(MissingRewards, match="has none for 'b'"):
        window_values("reward-spread", {"a": [1.0], "b": [1.0]}, {"a": [0.5]})


def test_reward_spread_tells_a_learnable_bucket_from_a_hopeless_one() -> None:
    """Failure mode (a) in miniature: rewards 0.9 c + 0.1 u. std-normalised advantages give
    both buckets the same window mean; the reward spread ranks the learnable one first."""
    rng = np.random.default_rng(0)
    u = rng.uniform(size=(2, 64))
    correct = np.stack([np.zeros(64), rng.integers(0, 2, 64)])  # hopeless, half right
    rewards = 0.9 * correct + 0.1 * u
    groups = rewards.reshape(2, 8, 8)
    adv = (groups - groups.mean(-1, keepdims=True)) / (groups.std(-1, keepdims=True) + 1e-6)
    by_adv = [float(np.abs(adv[j]).mean()) for j in range(2)]
    by_spread = [float(np.mean(reward_spread(rewards[j]))) for j in range(2)]
    assert by_adv[0] > 0.7  # a hopeless bucket looks as informative as any
    assert by_spread[1] > 10 * by_spread[0]
    strategy = DumpUcb(signal="reward-spread")
    model = RunModel(["hopeless", "learnable"], {"name": "dump-ucb", "signal": "reward-spread"})
    assert model.strategy == strategy
    model.apply(
        "r1",
        {"hopeless": adv[0].ravel().tolist(), "learnable": adv[1].ravel().tolist()},
        {"hopeless": rewards[0].tolist(), "learnable": rewards[1].tolist()},
    )
    stats = model.stats()
    p = weights(strategy, stats)
    expected = softmax(ucb_scores(stats, 1.0), 0.1)
    np.testing.assert_allclose(p, expected)
    np.testing.assert_allclose(model.weights(), p)
    assert stats.n.tolist() == [64.0, 64.0]
    assert stats.window_mean[1] == pytest.approx(by_spread[1], rel=1e-6)
    assert p[1] > 0.9
