"""Offline and online agree: for random report sequences, every strategy and option gives the
same weights in the local core (:class:`curriculum_core.RunModel`) as in the service.

Each example creates a fresh run over HTTP, posts a random sequence of reports (random
subsets of the distributions, empty lists, rewards present or not, repeated report ids) and
applies the same reports to a :class:`RunModel`; after every report the service's weights
must equal the model's within 1e-9. At the end the run's statistics, its export and an
import of the model's snapshot into a second run must agree with the model too.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curriculum_core import RunModel, rehearsal_share
from curriculum_core.prompts import diagnostics
from tests.conftest import create_run
from trainer_client.protocol import with_filtered

TOL = 1e-9

ADVANTAGES = st.floats(min_value=-10.0, max_value=10.0, allow_nan=False, allow_infinity=False)
REWARDS = st.floats(min_value=0.0, max_value=1.0, allow_nan=False, allow_infinity=False)
SMALL_WINDOW = st.integers(min_value=3, max_value=5)
REWARD_ALPHA = st.floats(min_value=0.01, max_value=1.0)


def _family(name: str) -> st.SearchStrategy[dict[str, Any]]:
    """Run-creation strategy dicts of one family of strategy and options."""
    if name == "dump-ucb":
        return st.just({"name": "dump-ucb"})
    if name == "dump-ucb-options":
        return st.fixed_dictionaries(
            {
                "name": st.just("dump-ucb"),
                "window": SMALL_WINDOW,
                "c": st.floats(min_value=0.0, max_value=3.0),
                "tau": st.floats(min_value=0.05, max_value=1.0),
                "floor": st.floats(min_value=0.01, max_value=0.5),
            }
        )
    if name == "dump-ucb-regress":
        return st.fixed_dictionaries(
            {
                "name": st.just("dump-ucb"),
                "regress_bonus": st.floats(min_value=0.5, max_value=5.0),
                "reward_alpha": REWARD_ALPHA,
            },
            optional={"window": SMALL_WINDOW},
        )
    if name == "dump-ucb-reward-spread":
        return st.fixed_dictionaries(
            {"name": st.just("dump-ucb"), "signal": st.just("reward-spread")},
            optional={"window": SMALL_WINDOW, "reward_alpha": REWARD_ALPHA},
        )
    if name == "uniform":
        return st.fixed_dictionaries(
            {"name": st.just("uniform")},
            optional={"window": SMALL_WINDOW, "reward_alpha": REWARD_ALPHA},
        )
    if name == "sec":
        return st.fixed_dictionaries(
            {"name": st.just("sec")},
            optional={
                "lr": st.floats(min_value=0.05, max_value=1.0),
                "tau": st.floats(min_value=0.1, max_value=1.0),
                "window": SMALL_WINDOW,
            },
        )
    if name == "learning-progress":
        return st.fixed_dictionaries(
            {"name": st.just("learning-progress")},
            optional={
                "alpha": st.floats(min_value=0.05, max_value=1.0),
                "tau": st.floats(min_value=0.02, max_value=0.5),
                "epsilon": st.floats(min_value=0.0, max_value=0.5),
                "reward_alpha": REWARD_ALPHA,
            },
        )
    if name == "exp3s":
        return st.fixed_dictionaries(
            {"name": st.just("exp3s"), "history": st.integers(min_value=2, max_value=8)},
            optional={
                "eta": st.floats(min_value=0.05, max_value=1.0),
                "epsilon": st.floats(min_value=0.0, max_value=0.5),
            },
        )
    if name == "dump-ducb":
        return st.fixed_dictionaries(
            {"name": st.just("dump-ducb")},
            optional={
                "horizon": st.floats(min_value=1.0, max_value=200.0),
                "c": st.floats(min_value=0.0, max_value=2.0),
                "floor": st.floats(min_value=0.0, max_value=0.5),
                "window": SMALL_WINDOW,
            },
        )
    if name == "dump-rehearse":
        return st.fixed_dictionaries(
            {"name": st.just("dump-rehearse")},
            optional={
                "c": st.floats(min_value=0.0, max_value=2.0),
                "tau": st.floats(min_value=0.05, max_value=1.0),
                "rehearse": st.floats(min_value=0.0, max_value=1.0),
                "confidence": st.floats(min_value=0.01, max_value=10.0),
                "memory": st.floats(min_value=0.5, max_value=1.0),
                "ref_alpha": st.floats(min_value=0.01, max_value=1.0),
                "floor": st.floats(min_value=0.0, max_value=0.5),
                "window": SMALL_WINDOW,
            },
        )
    if name == "dump-guard":
        return st.fixed_dictionaries(
            {"name": st.just("dump-guard")},
            optional={
                "c": st.floats(min_value=0.0, max_value=2.0),
                "tau": st.floats(min_value=0.05, max_value=1.0),
                "tau_guard": st.floats(min_value=0.05, max_value=2.0),
                "guard_tol": st.floats(min_value=0.0, max_value=0.5),
                "guard_width": st.floats(min_value=0.01, max_value=1.0),
                "regress_bonus": st.floats(min_value=0.0, max_value=5.0),
                "reward_alpha": REWARD_ALPHA,
                "window": SMALL_WINDOW,
            },
        )
    raise AssertionError(name)


FAMILIES = [
    "dump-ucb",
    "dump-ucb-options",
    "dump-ucb-regress",
    "dump-ucb-reward-spread",
    "uniform",
    "sec",
    "learning-progress",
    "exp3s",
    "dump-ducb",
    "dump-rehearse",
    "dump-guard",
]


@st.composite
def _report(
    draw: st.DrawFn, names: list[str], needs_rewards: bool, rewards_often: bool = False
) -> tuple[dict[str, list[float]], dict[str, list[float]] | None]:
    """One valid report: advantages over a random subset (some lists empty, at least one
    value in all) and rewards, absent, partial or over other distributions too (but for
    every distribution with advantages when the signal needs them; for most of them when
    ``rewards_often``, so that a strategy that learns from rewards has some to learn from)."""
    chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=len(names), unique=True))
    advantages = {name: draw(st.lists(ADVANTAGES, max_size=8)) for name in chosen}
    if not any(advantages.values()):
        advantages[chosen[0]] = draw(st.lists(ADVANTAGES, min_size=1, max_size=8))
    if not needs_rewards and draw(st.integers(0, 3)) == 0:
        return advantages, None
    rewards: dict[str, list[float]] = {}
    for name in names:
        carried = bool(advantages.get(name))
        if carried and (needs_rewards or (rewards_often and draw(st.integers(0, 3)) > 0)):
            rewards[name] = draw(st.lists(REWARDS, min_size=1, max_size=8))
        elif draw(st.booleans()):  # sometimes absent; sometimes for a name without advantages
            rewards[name] = draw(st.lists(REWARDS, max_size=8))
    return advantages, rewards


@st.composite
def _scenario(draw: st.DrawFn, family: str) -> dict[str, Any]:
    """A strategy, K distributions, a seed and 1..12 reports (some with repeated ids; 8..12
    over K >= 2 for dump-rehearse)."""
    strategy = draw(_family(family))
    # dump-rehearse learns from the rewards of distributions that return after a gap: give
    # it rewards, more than one distribution and enough reports for some to return twice
    rewards_often = strategy["name"] in ("dump-rehearse", "dump-guard")
    k = draw(st.integers(min_value=2 if rewards_often else 1, max_value=5))
    names = [f"d{i}" for i in range(k)]
    needs_rewards = strategy.get("signal") == "reward-spread"
    # a report, whether it repeats an earlier report's id (1 in 4) and which (modulo the step)
    drawn = draw(
        st.lists(
            st.tuples(
                _report(names, needs_rewards, rewards_often), st.integers(0, 3), st.integers(0, 11)
            ),
            min_size=8 if rewards_often else 1,
            max_size=12,
        )
    )
    reports = []
    for step, ((advantages, rewards), repeat, earlier) in enumerate(drawn):
        report_id = f"r{earlier % step}" if repeat == 3 and step else f"r{step}"
        reports.append(
            {"report_id": report_id, "step": step, "advantages": advantages, "rewards": rewards}
        )
    return {
        "strategy": strategy,
        "names": names,
        "seed": draw(st.integers(min_value=0, max_value=2**40)),
        "reports": reports,
    }


@st.composite
def _filtered_scenario(draw: st.DrawFn, family: str) -> dict[str, Any]:
    """A scenario whose reports hold only groups a filter dropped (dynamic sampling): each
    group's completions with advantage 0 and one reward shared by the group."""
    scenario = draw(_scenario(family))
    names = scenario["names"]
    group = st.tuples(st.sampled_from([0.0, 1.0]), st.integers(1, 4)).map(lambda t: [t[0]] * t[1])
    for body in scenario["reports"]:
        filtered = draw(
            st.dictionaries(st.sampled_from(names), st.lists(group, min_size=1, max_size=3),
                            min_size=1)
        )  # fmt: skip
        body["advantages"], body["rewards"] = with_filtered({}, None, filtered)
    return scenario


def _assert_weights(got: dict[str, float], model_weights: dict[str, float], what: str) -> None:
    assert list(got) == list(model_weights), what
    for name, expected in model_weights.items():
        assert abs(got[name] - expected) <= TOL, (
            f"{what}: weight of {name!r} is {got[name]!r} in the service, {expected!r} in the core"
        )


@pytest.mark.parametrize("family", FAMILIES)
def test_core_and_service_give_the_same_weights(
    http: httpx.Client, service_url: str, family: str
) -> None:
    @settings(
        max_examples=20,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(scenario=_scenario(family))
    def check(scenario: dict[str, Any]) -> None:
        _check_scenario(http, service_url, scenario)

    check()


@pytest.mark.parametrize("family", ["dump-ucb", "dump-ucb-reward-spread", "dump-ducb", "exp3s"])
def test_core_and_service_agree_on_filtered_groups(
    http: httpx.Client, service_url: str, family: str
) -> None:
    @settings(
        max_examples=10,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(scenario=_filtered_scenario(family))
    def check(scenario: dict[str, Any]) -> None:
        _check_scenario(http, service_url, scenario)

    check()


def _check_scenario(http: httpx.Client, url: str, scenario: dict[str, Any]) -> None:
    names, strategy, seed = scenario["names"], scenario["strategy"], scenario["seed"]
    run_id = f"agree-{uuid.uuid4().hex}"
    run, headers = create_run(http, url, names, run_id=run_id, strategy=strategy, seed=seed)
    copy_run: str | None = None
    try:
        model = RunModel(names, strategy, seed, run_id=run)
        for body in scenario["reports"]:
            advantages, rewards = model.validate(body["advantages"], body["rewards"])
            applied = model.apply(body["report_id"], advantages, rewards)
            reply = http.post(f"{url}/v1/runs/{run}/reports", json=body, headers=headers)
            assert reply.status_code == 200, reply.text
            answer = reply.json()
            assert answer["status"] == ("applied" if applied else "duplicate"), body
            assert answer["version"] == model.version
            _assert_weights(answer["weights"], model.named_weights(), f"after {body}")

        info = http.get(f"{url}/v1/runs/{run}", headers=headers).json()
        assert info["version"] == model.version
        _assert_weights(info["weights"], model.named_weights(), "GET /v1/runs/{id}")
        stats = model.stats()
        shares = rehearsal_share(model.strategy, model.k, model.state)
        for i, name in enumerate(names):
            got = info["stats"][name]
            assert got["n"] == int(model.n[i]), name
            assert got["window_mean"] == pytest.approx(stats.window_mean[i], rel=0, abs=TOL)
            reward_n, reward_mean, reward_last, reward_best = model.rewards[i].tolist()
            assert got["reward_n"] == int(reward_n), name
            assert got["reward_mean"] == pytest.approx(reward_mean, rel=0, abs=TOL)
            assert got["reward_last"] == pytest.approx(reward_last, rel=0, abs=TOL)
            assert got["reward_best"] == pytest.approx(reward_best, rel=0, abs=TOL)
            assert got["rehearsal_share"] == pytest.approx(shares[i], rel=0, abs=TOL), name

        export = http.get(f"{url}/v1/runs/{run}/export?history=false", headers=headers)
        assert export.status_code == 200, export.text
        exported, snapshot = export.json(), model.snapshot()
        assert exported["report_ids"] == snapshot["report_ids"]
        for name in names:
            got_window = exported["distributions"][name]["window"]
            assert got_window == snapshot["distributions"][name]["window"], name
        assert exported["strategy_state"] == pytest.approx(
            snapshot["strategy_state"], rel=0, abs=TOL
        )
        restored = RunModel.from_snapshot(exported)
        assert restored.version == model.version
        _assert_weights(info["weights"], restored.named_weights(), "RunModel.from_snapshot")

        copy_run, copy_headers = create_run(
            http, url, names, run_id=f"{run_id}-copy", strategy=strategy, seed=seed
        )
        imported = http.put(f"{url}/v1/runs/{copy_run}/import", json=snapshot, headers=copy_headers)
        assert imported.status_code == 200, imported.text
        _assert_weights(imported.json()["weights"], model.named_weights(), "import of snapshot")
        after = http.get(f"{url}/v1/runs/{copy_run}", headers=copy_headers).json()
        _assert_weights(after["weights"], model.named_weights(), "GET after the import")
        http.delete(f"{url}/v1/runs/{copy_run}", headers=copy_headers).raise_for_status()
        copy_run = None
    finally:
        http.delete(f"{url}/v1/runs/{run}", headers=headers)
        if copy_run is not None:
            http.delete(f"{url}/v1/runs/{copy_run}", headers=copy_headers)


# --- prompt selection ---------------------------------------------------------------------

SELECTION = st.fixed_dictionaries(
    {},
    optional={
        "mode": st.sampled_from(["skip", "coverage"]),
        "target_zero_variance": st.floats(min_value=0.0, max_value=1.0),
        "max_skip": st.floats(min_value=0.0, max_value=0.95),
        "adapt": st.floats(min_value=0.0, max_value=1.0),
        "forgotten_skip": st.floats(min_value=0.0, max_value=1.0),
        "solved_above": st.sampled_from([0.0, 0.5]),
        "max_skips": st.integers(min_value=1, max_value=4),
    },
)


@st.composite
def _prompt_scenario(draw: st.DrawFn) -> dict[str, Any]:
    """K distributions with 1..9 prompts each, selection parameters, and 1..10 steps: each a
    plan (asked 1..3 times, as ranks do) and a report of a group per planned slot (rewards
    often all equal, so streaks grow and prompts get skipped), some ids repeated."""
    k = draw(st.integers(min_value=1, max_value=4))
    names = [f"d{i}" for i in range(k)]
    steps = []
    for step in range(draw(st.integers(min_value=1, max_value=10))):
        batch = draw(st.integers(min_value=1, max_value=8))
        rewards = [
            draw(st.sampled_from([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0, 1.0]]))
            for _ in range(batch)
        ]
        repeat = step > 0 and draw(st.integers(0, 4)) == 0
        steps.append(
            {
                "batch_size": batch,
                "asks": draw(st.integers(min_value=1, max_value=3)),
                "rewards": rewards,
                "report_id": f"r{step - 1}" if repeat else f"r{step}",
            }
        )
    return {
        "names": names,
        "prompts": {name: draw(st.integers(min_value=1, max_value=9)) for name in names},
        "selection": draw(SELECTION),
        "strategy": draw(st.sampled_from(["dump-ucb", "uniform"])),
        "seed": draw(st.integers(min_value=0, max_value=2**40)),
        "steps": steps,
    }


def test_core_and_service_plan_the_same_prompts(http: httpx.Client, service_url: str) -> None:
    @settings(
        max_examples=25,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(scenario=_prompt_scenario())
    def check(scenario: dict[str, Any]) -> None:
        _check_prompt_scenario(http, [service_url], scenario)

    check()


def test_replicas_plan_the_prompts_of_the_core(
    http: httpx.Client, start_service: Callable[..., str]
) -> None:
    """Two replicas on one Redis, each planning new steps from the weights and prompt state
    it saw last while the other applies the reports (and asks for the kept plans): the
    plans, prompts and state are still the core's (the scripts find them moved, and the
    plans are drawn again from what is current)."""
    urls = [start_service(), start_service()]

    @settings(
        max_examples=15,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(scenario=_prompt_scenario())
    def check(scenario: dict[str, Any]) -> None:
        _check_prompt_scenario(http, urls, scenario)

    check()


def _check_prompt_scenario(http: httpx.Client, urls: list[str], scenario: dict[str, Any]) -> None:
    """The scenario's plans and reports against the core's; step ``t``'s plan asked of
    replica ``t``, again of the next ones (in turn), and its report sent to replica
    ``t + 1`` (of ``urls``, in a ring)."""
    url = urls[0]
    names, seed, strategy = scenario["names"], scenario["seed"], scenario["strategy"]
    config = {
        "strategy": strategy,
        "seed": seed,
        "prompts": scenario["prompts"],
        "prompt_selection": scenario["selection"],
    }
    run, headers = create_run(http, url, names, run_id=f"agree-p-{uuid.uuid4().hex}", **config)
    copy_run: str | None = None
    try:
        model = RunModel(
            names,
            strategy,
            seed,
            run_id=run,
            prompts=scenario["prompts"],
            prompt_selection=scenario["selection"],
        )
        for step, spec in enumerate(scenario["steps"]):
            expected = model.plan_step(step, spec["batch_size"])
            for ask in range(spec["asks"]):
                body = {"step": step, "batch_size": spec["batch_size"]}
                asked = urls[(step + ask) % len(urls)]
                got = http.post(f"{asked}/v1/runs/{run}/plan", json=body, headers=headers)
                assert got.status_code == 200, got.text
                assert got.json()["assignment"] == expected.assignment, step
                assert got.json()["prompt_ids"] == expected.prompt_ids, step
            groups = [
                {"distribution": d, "prompt": p, "rewards": r}
                for d, p, r in zip(
                    expected.assignment, expected.prompt_ids or [], spec["rewards"], strict=True
                )
            ]
            advantages: dict[str, list[float]] = {}
            for group in groups:
                mean = sum(group["rewards"]) / len(group["rewards"])
                advantages.setdefault(group["distribution"], []).extend(
                    r - mean for r in group["rewards"]
                )
            report = {
                "report_id": spec["report_id"],
                "step": step,
                "advantages": advantages,
                "groups": groups,
            }
            checked_adv, _ = model.validate(advantages, None)
            applied = model.apply(
                spec["report_id"], checked_adv, None, model.validate_groups(groups)
            )
            reporter = urls[(step + 1) % len(urls)]
            reply = http.post(f"{reporter}/v1/runs/{run}/reports", json=report, headers=headers)
            assert reply.status_code == 200, reply.text
            assert reply.json()["status"] == ("applied" if applied else "duplicate")
            _assert_weights(reply.json()["weights"], model.named_weights(), f"step {step}")

        info = http.get(f"{url}/v1/runs/{run}", headers=headers).json()
        assert info["config"]["prompts"] == scenario["prompts"]
        _assert_diagnostics(info["prompts"], model)
        export = http.get(f"{url}/v1/runs/{run}/export?history=false", headers=headers).json()
        snapshot = model.snapshot()
        assert export["config"] == {
            **snapshot["config"],
            "created_at": info["config"]["created_at"],
        }
        _assert_prompt_state(export["prompt_state"], snapshot["prompt_state"])

        # the model's snapshot imported into a second run plans the next step as the model
        copy_run, copy_headers = create_run(http, url, names, run_id=f"{run}-copy", **config)
        imported = http.put(f"{url}/v1/runs/{copy_run}/import", json=snapshot, headers=copy_headers)
        assert imported.status_code == 200, imported.text
        copy_export = http.get(f"{url}/v1/runs/{copy_run}/export", headers=copy_headers).json()
        _assert_prompt_state(copy_export["prompt_state"], snapshot["prompt_state"])
        step = len(scenario["steps"])
        expected = model.plan_step(step, 8)
        body = {"step": step, "batch_size": 8}
        for target, target_headers in ((run, headers), (copy_run, copy_headers)):
            got = http.post(f"{url}/v1/runs/{target}/plan", json=body, headers=target_headers)
            assert got.status_code == 200, got.text
            assert got.json()["prompt_ids"] == expected.prompt_ids, target
        http.delete(f"{url}/v1/runs/{copy_run}", headers=copy_headers).raise_for_status()
        copy_run = None
    finally:
        http.delete(f"{url}/v1/runs/{run}", headers=headers)
        if copy_run is not None:
            http.delete(f"{url}/v1/runs/{copy_run}", headers=copy_headers)


def _assert_diagnostics(got: dict[str, Any], model: RunModel) -> None:
    assert model.prompts is not None
    expected = diagnostics(model.prompts, model.names)
    assert list(got) == list(expected)
    for name, values in expected.items():
        for key, value in values.items():
            assert got[name][key] == pytest.approx(value, rel=0, abs=TOL), (name, key)


def _assert_prompt_state(got: dict[str, Any], expected: dict[str, Any]) -> None:
    assert got["records"] == expected["records"]
    assert list(got) == list(expected)
    for key, values in expected.items():
        if key != "records":
            assert got[key] == pytest.approx(values, rel=0, abs=TOL), key
