"""LocalScheduler runs the service's math; ServiceScheduler adapts the HTTP client."""

from types import SimpleNamespace

import numpy as np
import pytest

from curriculum_core import DumpGuard, RunModel, softmax, ucb_scores
from trainer_client.grpo.scheduler import LocalScheduler, ServiceScheduler

NAMES = ["a", "b", "c"]


def test_starts_uniform_and_plans_deterministically() -> None:
    s = LocalScheduler(NAMES, seed=7)
    assert s.weights() == pytest.approx({n: 1 / 3 for n in NAMES})
    plan = s.plan(4, 32)
    assert len(plan) == 32 and set(plan) <= set(NAMES)
    assert plan == LocalScheduler(NAMES, seed=7).plan(4, 32)
    assert plan != s.plan(5, 32)


def test_weights_follow_dump_ucb_on_reports() -> None:
    s = LocalScheduler(NAMES, "dump-ucb", tau=0.5)
    s.report(0, {"a": [1.0, -1.0], "b": [0.0, 0.0, 0.0, 0.0]}, {"a": [1.0, 0.0]})
    reference = RunModel(NAMES)
    reference.apply("r", {"a": [1.0, -1.0], "b": [0.0] * 4})
    assert reference.n.tolist() == [2.0, 4.0, 0.0]
    expected = softmax(ucb_scores(reference.stats(), 1.0), 0.5)
    assert list(s.weights().values()) == pytest.approx(expected.tolist())
    assert s.weights()["a"] > s.weights()["c"] > s.weights()["b"]
    # rewards: count, moving average (the first batch's mean sets it), last mean, best
    assert s.model.rewards[0].tolist() == [2.0, 0.5, 0.5, 0.5]
    assert s.model.rewards[2].tolist() == [0.0, 0.0, 0.0, 0.0]


def test_uniform_strategy_ignores_reports() -> None:
    s = LocalScheduler(NAMES, "uniform", window=10)
    s.report(0, {"a": [3.0]})
    assert s.weights() == pytest.approx({n: 1 / 3 for n in NAMES})


def test_export_import_round_trip() -> None:
    s = LocalScheduler(NAMES, seed=3, window=4, c=0.5)
    s.report(0, {"a": [0.5] * 6, "c": [-2.0]}, {"a": [1.0] * 6})
    t = LocalScheduler(NAMES)
    t.import_(s.export())
    assert t.weights() == s.weights() and t.plan(9, 16) == s.plan(9, 16)
    assert t.model.n.tolist() == [6.0, 0.0, 1.0] and t.model.window(0).tolist() == [0.5] * 4
    assert t.model.window(2).tolist() == [2.0] and t.model.rewards[0].tolist() == [6, 1, 1, 1]
    assert t.strategy == DumpGuard(window=4, c=0.5)  # the default strategy


def test_export_import_keeps_rewards_and_strategy_state() -> None:
    """A stateful strategy and the reward averages that regress_bonus reads survive a
    checkpoint: after the round trip both schedulers weigh the same."""
    s = LocalScheduler(NAMES, strategy="dump-ucb", regress_bonus=2.0)
    for step, r in enumerate([1.0, 0.0, 0.0]):
        s.report(step, {"a": [0.1, -0.1]}, {"a": [r, r]})
    t = LocalScheduler(NAMES, strategy="dump-ucb", regress_bonus=2.0)
    t.import_(s.export())
    # the moving average: 1 -> 0.9 * 1 + 0.1 * 0 = 0.9 -> 0.9 * 0.9 = 0.81; best 1, 6 rewards
    assert t.model.rewards[0].tolist() == [6.0, pytest.approx(0.81), 0.0, 1.0]
    assert t.model.rewards[0].tolist() == s.model.rewards[0].tolist()
    assert t.weights() == s.weights()
    sec = LocalScheduler(NAMES, strategy="sec")
    sec.report(0, {"b": [1.0, -1.0]})
    copy = LocalScheduler(NAMES, strategy="sec")
    copy.import_(sec.export())
    assert copy.model.state.tolist() == [0.0, 0.5, 0.0] and copy.weights() == sec.weights()


def test_discounted_ucb_runs_locally_and_its_state_survives_a_checkpoint() -> None:
    """``--scheduler local --strategy dump-ducb``: counts and sums (N then S) after two
    reports with horizon 4: 2 samples decay nothing yet, then 2 more decay by exp(-2/4)."""
    s = LocalScheduler(NAMES, strategy="dump-ducb", horizon=4.0)
    s.report(0, {"a": [1.0, -1.0]})
    s.report(1, {"b": [0.5, -0.5]})
    d = float(np.exp(-0.5))
    expected = [2 * d, 2.0, 0.0, 2 * d, 1.0, 0.0]
    assert s.model.state.tolist() == pytest.approx(expected)
    copy = LocalScheduler(NAMES, strategy="dump-ducb", horizon=4.0)
    copy.import_(s.export())
    assert copy.model.state.tolist() == pytest.approx(expected)
    assert copy.weights() == s.weights() and copy.plan(5, 16) == s.plan(5, 16)


def test_rehearsal_runs_locally_and_its_state_survives_a_checkpoint() -> None:
    """``--scheduler local --strategy dump-rehearse``, memory and ref_alpha 0.5: ``b`` (4
    samples, reward 0.5) is in every report; ``a`` (2 samples) is left out of two reports and
    comes back 0.25 lower, then of three and comes back 0.625 lower than its reference.
    Idle counts, references and forgetting sums survive the checkpoint exactly, and so do
    the weights, the rehearsal share and the plans."""
    params = {"memory": 0.5, "ref_alpha": 0.5}
    s = LocalScheduler(NAMES, strategy="dump-rehearse", **params)
    a_rewards = [1.0, None, None, 0.75, None, None, None, 0.25, None]
    for step, a in enumerate(a_rewards):
        advantages = {"b": [1.0, -1.0, 0.5, -0.5]}
        rewards = {"b": [0.5] * 4}
        if a is not None:
            advantages["a"], rewards["a"] = [0.5, -0.5], [a, a]
        s.report(step, advantages, rewards)
    # a: gaps of 8 and 12 samples, drops 0.25 and 0.875 - 0.25; ref 1 -> 0.875 -> 0.5625
    gd, gg, dd = 0.5 * 8 * 0.25 + 12 * 0.625, 0.5 * 64 + 144, 0.5 * 0.0625 + 0.390625
    idle = [4.0, 0.0, 3 * 6 + 6 * 4.0]  # c was never reported: every sample counts
    ref, seen, returns = [0.5625, 0.5, 0.0], [1.0, 1.0, 0.0], [1.5, 0.0, 0.0]
    expected = [*idle, *ref, *seen, gd, 0, 0, gg, 0, 0, dd, 0, 0, *returns]
    assert s.model.state.tolist() == pytest.approx(expected, abs=1e-12)
    # t = 4.25 > confidence 1: a gets the whole rehearsal share, 1 / K
    assert s.strategy.shares(s.model.state).tolist() == pytest.approx([1 / 3, 0.0, 0.0])
    copy = LocalScheduler(NAMES, strategy="dump-rehearse", **params)
    copy.import_(s.export())
    assert copy.model.state.tolist() == s.model.state.tolist()
    assert copy.weights() == s.weights() and copy.plan(9, 16) == s.plan(9, 16)


def test_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="advantages name distribution 'z', which the run"):
        LocalScheduler(NAMES).report(0, {"z": [1.0]})
    with pytest.raises(ValueError, match="unique"):
        LocalScheduler(["a", "a"])
    with pytest.raises(ValueError, match="distributions"):
        LocalScheduler(NAMES).import_(LocalScheduler(["x"]).export())


class FakeClient:
    """Records calls; shaped like trainer_client.client.CurriculumClient."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def plan(self, step: int, batch_size: int) -> SimpleNamespace:
        self.calls.append(("plan", step, batch_size))
        return SimpleNamespace(assignment=("a", "b")[:batch_size], counts={"a": 1, "b": 1})

    def report(self, step: int, advantages: dict, rewards: dict | None) -> None:
        self.calls.append(("report", step, advantages, rewards))

    def weights(self) -> dict[str, float]:
        return {"a": 0.25, "b": 0.75}

    buffered = 0

    def checkpoint(self) -> dict:
        return {"snap": 1}

    def restore(self, snapshot: dict) -> None:
        self.calls.append(("restore", snapshot))

    def flush(self, timeout_s: float) -> bool:
        self.calls.append(("flush", timeout_s))
        return True

    def close(self) -> None:
        self.calls.append(("close",))


def test_service_scheduler_adapts_the_client() -> None:
    client = FakeClient()
    s = ServiceScheduler(client, background=False)
    assert s.plan(3, 2) == ["a", "b"]
    s.report(3, {"a": [0.1]}, {"a": [1.0]})
    s.import_({"snap": 1})
    assert s.weights() == {"a": 0.25, "b": 0.75} and s.export() == {"snap": 1}
    assert s.close(5.0) is True
    assert client.calls == [
        ("plan", 3, 2),
        ("report", 3, {"a": [0.1]}, {"a": [1.0]}),
        ("restore", {"snap": 1}),
        ("flush", 5.0),
        ("close",),
    ]


def test_build_scheduler_local_and_service(service_url: str) -> None:
    """Local mode builds LocalScheduler; service mode creates the run on a real service,
    and its plans and weights come from there (``--service-url`` a comma-separated list of
    replicas, a dead one first)."""
    import httpx

    from tests.conftest import free_port
    from trainer_client.grpo.cli import build_scheduler

    args = SimpleNamespace(
        scheduler="local",
        strategy="dump-ucb",
        strategy_params={"tau": 0.5},
        seed=4,
        service_url=service_url,
        run_id="sched-test",
        token=None,
    )
    local = build_scheduler(args, NAMES)
    assert isinstance(local, LocalScheduler) and local.strategy.tau == 0.5 and local.seed == 4
    replicas = f"http://127.0.0.1:{free_port()},{service_url}"
    service = build_scheduler(
        SimpleNamespace(**{**vars(args), "scheduler": "service", "service_url": replicas}), NAMES
    )
    assert isinstance(service, ServiceScheduler)
    assert service.client.base_urls == replicas.split(",")
    try:
        assert service.plan(0, 8) == local.plan(0, 8)  # same math, same seed, no reports yet
        service.report(0, {NAMES[0]: [1.0, -1.0]}, {NAMES[0]: [1.0, 0.0]})
        headers = {"Authorization": f"Bearer {service.client.token}"}
        info = httpx.get(f"{service_url}/v1/runs/sched-test", headers=headers).json()
        assert info["config"]["strategy"]["tau"] == 0.5 and info["config"]["seed"] == 4
        assert info["stats"][NAMES[0]]["n"] == 2
        assert service.weights() == pytest.approx(info["weights"])
    finally:
        service.client.close()


def test_background_calls_give_the_plans_a_blocking_loop_gets(service_url: str) -> None:
    """Two runs of one config on a real service, the same reports: with the report and the
    next plan in the background, every step's plan equals the blocking loop's."""
    from trainer_client.client import CurriculumClient

    rng = np.random.default_rng(0)
    reports = [
        {name: rng.normal(0, 1 + i, size=4).round(2).tolist() for i, name in enumerate(NAMES)}
        for _ in range(12)
    ]
    plans = []
    for background in (False, True):
        client = CurriculumClient.create_or_attach(service_url, NAMES, seed=3)
        scheduler = ServiceScheduler(client, background=background)
        try:
            steps = []
            for step, advantages in enumerate(reports):
                plan = scheduler.plan(step, 8)
                steps.append(plan)
                scheduler.report(step, {n: advantages[n] for n in set(plan)})
                assert scheduler.weights().keys() == set(NAMES)
            plans.append(steps)
            assert sum(
                d["n"] for d in scheduler.export()["snapshot"]["distributions"].values()
            ) == sum(4 * len(set(p)) for p in steps)
        finally:
            scheduler.close()
    assert plans[0] == plans[1]
    assert len({tuple(p) for p in plans[0]}) > 1  # the weights moved, so did the plans


def test_local_scheduler_reward_spread_signal() -> None:
    s = LocalScheduler(["a", "b"], "dump-ucb", signal="reward-spread")
    s.report(0, {"a": [2.0, -2.0], "b": [0.5, -0.5]}, {"a": [0.5, 0.5], "b": [1.0, 0.0]})
    # a's rewards agree (spread 0), b's disagree (0.5 each): b is the learnable one
    stats = s.model.stats()
    assert stats.window_mean.tolist() == [0.0, 0.5]
    assert s.weights()["b"] > 0.9
    with pytest.raises(ValueError, match="has none for 'a'"):
        s.report(1, {"a": [1.0]})
