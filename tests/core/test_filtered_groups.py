"""Reports made only of groups a filter dropped (dynamic sampling): every completion
reported with advantage 0 and its real reward. The core's invariants hold for them, for
every strategy: the weights stay a distribution, the counts are exactly the completions
generated, and a window of the advantage signal fills with zeros."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from curriculum_core import RunModel, signal_of
from tests.core.test_weight_properties import strategy
from trainer_client.protocol import with_filtered

NAMES = ["d0", "d1", "d2", "d3"]

# a dropped group: G completions whose rewards are all equal (that is why it was dropped)
GROUP = st.tuples(st.integers(1, 8), st.sampled_from([0.0, 1.0, 0.5, -3.0, 1e6]))
FILTERED = st.dictionaries(
    st.sampled_from(NAMES), st.lists(GROUP, min_size=1, max_size=5), min_size=1
)


@settings(max_examples=200, deadline=None)
@given(
    params=strategy(),
    reports=st.lists(FILTERED, min_size=1, max_size=12),
    step=st.integers(0, 10**6),
    round=st.integers(0, 63),
)
def test_filtered_groups_keep_the_invariants(
    params: dict[str, object],
    reports: list[dict[str, list[tuple[int, float]]]],
    step: int,
    round: int,
) -> None:
    params = {**params, "window": 5}
    model = RunModel(NAMES, params, seed=1)
    generated = dict.fromkeys(NAMES, 0)
    rewards_seen: dict[str, list[float]] = {name: [] for name in NAMES}
    for i, groups in enumerate(reports):
        filtered = {name: [[r] * g for g, r in group_list] for name, group_list in groups.items()}
        advantages, rewards = with_filtered({}, None, filtered)
        assert all(v == 0.0 for values in advantages.values() for v in values)
        adv, rew = model.validate(advantages, rewards)
        assert model.apply(f"r{i}", adv, rew)
        for name, group_list in groups.items():
            generated[name] += sum(g for g, _ in group_list)
            rewards_seen[name] += [r for g, r in group_list for _ in range(g)]
        p = model.weights()
        assert p.shape == (len(NAMES),)
        assert np.all(np.isfinite(p)) and np.all(p >= 0)
        assert abs(float(p.sum()) - 1.0) <= 1e-9
    assert model.n.tolist() == [generated[name] for name in NAMES]
    for i, name in enumerate(NAMES):
        assert int(model.rewards[i, 0]) == len(rewards_seen[name])
        if signal_of(model.strategy) == "advantage":
            window = model.window(i)
            assert window.size == min(5, generated[name])
            assert np.all(window == 0)
    plan = model.plan(step, 32, round)
    assert len(plan) == 32 and set(plan) <= set(NAMES)
