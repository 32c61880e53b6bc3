"""Properties of the scheduling core for any finite statistics: weights are finite,
non-negative and sum to 1, and a plan has exactly ``batch_size`` slots, for every strategy
with any parameters in their declared ranges, from K = 1 to K = 20,000, with huge counts,
huge and all-zero windows."""

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
    counts_of,
    initial_state,
    plan_rng,
    strategy_from_dict,
    weights,
)
from curriculum_core.params import Parameter, parameters_of

SIZES = st.sampled_from([1, 2, 3, 7, 64, 20_000])


@st.composite
def run_stats(draw: st.DrawFn) -> RunStats:
    """Statistics of K distributions: counts up to 1e300, window means from 0 (all-zero
    windows) to 3e38 (float32's largest), reward averages in [-1e38, 1e38] (the largest a
    report may carry)."""
    k = draw(SIZES)
    kind = draw(st.sampled_from(["zeros", "uniform", "spread"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "zeros":
        n, mean = np.zeros(k), np.zeros(k)
    else:
        scale = draw(st.sampled_from([1.0, 1e6, 1e15, 1e300]))
        n = np.floor(rng.uniform(0, scale, k))
        top = draw(st.sampled_from([1e-12, 1.0, 1e6, 3e38]))
        mean = rng.uniform(0, top, k) if kind == "spread" else np.full(k, top)
    top_reward = draw(st.sampled_from([1.0, 1e6, 1e38]))
    rewards = rng.uniform(-top_reward, top_reward, (2, k))
    return RunStats(n=n, window_mean=mean, reward_mean=rewards[0], reward_best=np.maximum(*rewards))


def parameter_values(p: Parameter) -> st.SearchStrategy[object]:
    """Any value in a parameter's declared range (numbers up to 1e300 where it has no top)."""
    if p.choices:
        return st.sampled_from(p.choices)
    r = p.range
    low = r.minimum if r.minimum is not None else r.exclusive_minimum
    high = r.maximum if r.maximum is not None else r.exclusive_maximum
    if p.kind is int:
        return st.integers(int(low or 0), int(high or 10**6))
    return st.floats(
        min_value=low,
        max_value=1e300 if high is None else high,
        exclude_min=r.exclusive_minimum is not None,
        exclude_max=r.exclusive_maximum is not None,
    )


@st.composite
def strategy(draw: st.DrawFn) -> dict[str, object]:
    """A strategy with any of its parameters drawn from their declared ranges."""
    name = draw(st.sampled_from(sorted(STRATEGIES)))
    params: dict[str, object] = {"name": name}
    for p in parameters_of(STRATEGIES[name]):
        if p.name not in ("window", "history") and draw(st.booleans()):
            params[p.name] = draw(parameter_values(p))
    return params


@settings(max_examples=300, deadline=None)
@given(
    stats=run_stats(),
    params=strategy(),
    batch=st.integers(1, 300) | st.just(65_536),
    step=st.integers(0, 10**9),
)
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
                {int(i): rng.uniform(-1e38, 1e38, 4).tolist() for i in index},
                {int(i): rng.uniform(-1e38, 1e38, 4).tolist() for i in index},
            )
            state = advance(chosen, state, summary)
    p = weights(chosen, stats, state)
    assert p.shape == (stats.k,)
    assert np.all(np.isfinite(p)) and np.all(p >= 0)
    assert abs(float(p.sum()) - 1.0) <= 1e-9
    plan = compose_batch(p, batch, plan_rng(0, step, batch))
    assert plan.shape == (batch,) and plan.min() >= 0 and plan.max() < stats.k
    counts = counts_of(plan, stats.k)
    assert counts.sum() == batch and np.all(counts[p == 0] == 0)
