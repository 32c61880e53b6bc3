"""The client in a run that declares prompts: the service's prompts, groups reported, and
the same prompts planned offline by the local model."""

from __future__ import annotations

from typing import Any

import pytest

from curriculum_core import RunModel
from curriculum_core.prompts import diagnostics
from trainer_client import CurriculumClient, LocalService
from trainer_client.errors import InvalidRequest

NAMES = ["easy", "hard"]
PROMPTS = {"easy": 6, "hard": 4}
SELECTION = {"max_skips": 2}


def _groups(plan: Any, step: int) -> tuple[dict[str, list[float]], list[dict[str, Any]]]:
    """One group of two rollouts per slot: the easy prompts solved, the hard ones not,
    every third step mixed (zero-variance streaks grow, then break)."""
    groups, advantages = [], {}
    for name, prompt in zip(plan.assignment, plan.prompt_ids, strict=True):
        rewards = [1.0, 0.0] if step % 3 == 2 else ([1.0, 1.0] if name == "easy" else [0.0, 0.0])
        groups.append({"distribution": name, "prompt": prompt, "rewards": rewards})
        mean = sum(rewards) / 2
        advantages.setdefault(name, []).extend(r - mean for r in rewards)
    return advantages, groups


def test_prompts_online_and_offline_as_the_core_plans_them(own_service: LocalService) -> None:
    reference = RunModel(NAMES, "uniform", 3, prompts=PROMPTS, prompt_selection=SELECTION)
    with CurriculumClient.create_or_attach(
        own_service.url, NAMES, run_id="prompts", strategy="uniform", seed=3, prompts=PROMPTS,
        prompt_selection=SELECTION, retries=0, probe_initial_s=0.1, probe_max_s=0.2,
    ) as client:  # fmt: skip
        assert client.run_info()["config"]["prompts"] == PROMPTS
        for step in range(6):
            plan = client.plan(step, 5)
            expected = reference.plan_step(step, 5)
            assert plan.source == "service"
            assert (plan.assignment, plan.prompt_ids) == (expected.assignment, expected.prompt_ids)
            advantages, groups = _groups(plan, step)
            result = client.report(step, advantages, groups=groups)
            assert result.status == "applied"
            report_id = f"prompts/step-{step}/rank-0"
            reference.apply(report_id, advantages, None, reference.validate_groups(groups))
        assert reference.prompts is not None
        expected_diag = diagnostics(reference.prompts, NAMES)
        got = client.run_info()["prompts"]
        for name in NAMES:
            assert got[name] == pytest.approx(expected_diag[name], abs=1e-9)

        own_service.kill()
        plan = client.plan(6, 5)
        expected = reference.plan_step(6, 5)
        assert plan.source == "local"
        assert (plan.assignment, plan.prompt_ids) == (expected.assignment, expected.prompt_ids)
        advantages, groups = _groups(plan, 6)
        assert client.report(6, advantages, groups=groups).status == "buffered"
        checked = reference.validate_groups(groups)
        reference.apply("prompts/step-6/rank-0", advantages, None, checked)
        with pytest.raises(InvalidRequest, match="must be an integer in"):
            client.report(7, {"easy": [0.0]}, groups=[{**groups[0], "prompt": 99}])

        own_service.start()
        assert client.flush(10.0)
        exported = client.export()
        # the buffered report's groups moved the service's records exactly as the model's
        # (a plan made offline is not replayed: the service's pass positions skip it)
        assert exported["prompt_state"]["records"] == reference.prompts.to_json()["records"]
        assert exported["prompt_state"]["groups"] == reference.prompts.groups.tolist()
        client.delete()
