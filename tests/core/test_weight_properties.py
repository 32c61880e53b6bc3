"""Properties of the scheduling core for any finite statistics: weights are finite,
non-negative and sum to 1, and a plan has exactly ``batch_size`` slots, for every strategy,
from K = 1 to K = 20,000, with huge counts and all-zero windows."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from curriculum_core import (
    STRATEGIES,
    BatchSummary,
    RunStats,
    advance,
    compose_batch,
    initial_state,
    plan_rng,
    strategy_from_dict,
    weights,
)

SIZES = st.sampled_from([1, 2, 3, 7, 64, 20_000])


@st.composite
def run_stats(draw: st.DrawFn) -> RunStats:
    """Statistics of K distributions: counts up to 1e15, window means from 0 (all-zero
    windows) to 1e6, reward averages in [-1e6, 1e6]."""
    k = draw(SIZES)
    kind = draw(st.sampled_from(["zeros", "uniform", "spread"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "zeros":
        n, mean = np.zeros(k), np.zeros(k)
    else:
        scale = draw(st.sampled_from([1.0, 1e6, 1e15]))
        n = np.floor(rng.uniform(0, scale, k))
        top = draw(st.sampled_from([1e-12, 1.0, 1e6]))
        mean = rng.uniform(0, top, k) if kind == "spread" else np.full(k, top)
    rewards = rng.uniform(-1e6, 1e6, (2, k))
    return RunStats(n=n, window_mean=mean, reward_mean=rewards[0], reward_best=np.maximum(*rewards))


@st.composite
def strategy(draw: st.DrawFn) -> dict[str, object]:
    name = draw(st.sampled_from(sorted(STRATEGIES)))
    params: dict[str, object] = {"name": name}
    if name == "dump-ucb":
        params.update(
            c=draw(st.sampled_from([0.0, 1.0, 1e3])),
            tau=draw(st.sampled_from([1e-3, 0.1, 10.0])),
            floor=draw(st.sampled_from([0.0, 0.5])),
            regress_bonus=draw(st.sampled_from([0.0, 2.0])),
        )
    return params


@settings(max_examples=150, deadline=None)
@given(stats=run_stats(), params=strategy(), batch=st.integers(1, 300), step=st.integers(0, 10**9))
def test_weights_are_a_distribution_and_plans_fill_the_batch(
    stats: RunStats, params: dict[str, object], batch: int, step: int
) -> None:
    chosen = strategy_from_dict(params)
    state = initial_state(chosen, stats.k)
    if chosen.stateful:  # a state moved by a few reports of extreme values
        rng = np.random.default_rng(step)
        for _ in range(3):
            index = rng.choice(stats.k, size=min(stats.k, 5), replace=False)
            summary = BatchSummary.of_report(
                {int(i): rng.normal(0, 1e6, 4).tolist() for i in index},
                {int(i): rng.uniform(-1e6, 1e6, 4).tolist() for i in index},
            )
            state = advance(chosen, state, summary)
    p = weights(chosen, stats, state)
    assert p.shape == (stats.k,)
    assert np.all(np.isfinite(p)) and np.all(p >= 0)
    assert abs(float(p.sum()) - 1.0) <= 1e-9
    plan = compose_batch(p, batch, plan_rng(0, step, batch))
    assert plan.shape == (batch,) and plan.min() >= 0 and plan.max() < stats.k
