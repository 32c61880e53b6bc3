"""Prompt selection in the bundled trainer (``--prompt-ids``): the scheduler names each
slot's prompt, the trainer generates from exactly that train row, and every generated group
is reported with its prompt; against a real service process on loopback and in-process."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from curriculum_core.prompts import RECENT_ALPHA, diagnostics
from tests.trainer.test_dynamic_sampling import GROUP, PROMPTS, STEPS, TINY, _parity_tasks
from trainer_client import CurriculumClient, LocalService
from trainer_client.grpo import cli
from trainer_client.grpo import config as grpo_config
from trainer_client.grpo import trainer as trainer_module
from trainer_client.grpo.config import TrainConfig
from trainer_client.grpo.metrics import read_metrics
from trainer_client.grpo.scheduler import LocalScheduler, StepPlan
from trainer_client.run_files import read_run

ROWS, LEVELS = TINY["train_size"], TINY["levels"]


@pytest.fixture
def service(redis_url: str, tmp_path: Path) -> Iterator[LocalService]:
    with LocalService(tmp_path / "service", env={"REDIS_URL": redis_url}) as svc:
        yield svc


def _train(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *flags: str
) -> tuple[Path, list[list[str]]]:
    """Train ``STEPS`` steps of the tiny model with ``--prompt-ids`` (coverage mode: every
    prompt drawn is used, so cursors move by exactly the slots planned) and ``flags``;
    the output folder and the prompts of each ``generate`` call (one per round), in order."""
    monkeypatch.setattr(grpo_config, "build_distributions", _parity_tasks)
    generated: list[list[str]] = []
    real_generate = trainer_module.generate

    def recording_generate(model: Any, tokenizer: Any, prompts: list[str], *a: Any) -> Any:
        generated.append(list(prompts))
        return real_generate(model, tokenizer, prompts, *a)

    monkeypatch.setattr(trainer_module, "generate", recording_generate)
    config = tmp_path / "c.json"
    config.write_text(json.dumps(TINY | {"prompt_selection_params": {"mode": "coverage"}}))
    out = tmp_path / "run"
    args = ["--config", str(config), "--output-dir", str(out), "--no-progress",
            "--steps", str(STEPS), "--prompt-ids", *flags]  # fmt: skip
    assert cli.train_main(args) == 0
    return out, generated


def _check(
    out: Path,
    generated: list[list[str]],
    plan_of: Callable[[int, int], StepPlan],
    state: dict[str, dict[str, Any]],
    extra_plans: int,
) -> int:
    """Every round generated from the first slots of the scheduler's plan for it, from
    exactly the rows it names; the run's cursors moved by exactly the slots planned (plus
    ``extra_plans`` later round-0 plans: the service scheduler fetches the next step's plan
    ahead); its zero-variance shares are those of the groups the trainer reported. Returns
    the rounds generated."""
    rows = {d.name: d.train for d in _parity_tasks("reverse", LEVELS, 0, ROWS, 4, None, "exact")}
    steps = [r for r in read_metrics(out / "metrics.jsonl") if "time/step" in r]
    assert [r["step"] for r in steps] == list(range(STEPS))
    calls = iter(generated)
    planned: Counter[str] = Counter()
    used: dict[str, list[int]] = {name: [] for name in rows}
    for r in steps:
        rounds = r.get("round_groups", [PROMPTS])
        groups: Counter[str] = Counter()
        for i, n in enumerate(rounds):
            plan = plan_of(r["step"], i)
            assert plan.prompt_ids is not None and len(plan.prompt_ids) == PROMPTS
            planned.update(plan)
            prompts = next(calls)
            assert len(prompts) == n * GROUP
            for b, (name, prompt) in enumerate(zip(plan[:n], plan.prompt_ids[:n], strict=True)):
                assert prompts[b * GROUP : (b + 1) * GROUP] == [rows[name][prompt].prompt] * GROUP
                used[name].append(prompt)
            groups.update(plan[:n])
        generated_groups = {k.split("/", 1)[1]: v for k, v in r.items() if "generated_gr" in k}
        assert generated_groups == dict(groups)
        # rev-1's rewards are all 0: each of its groups is zero-variance
        assert r.get("zero_variance_groups/rev-1", 0) == groups["rev-1"]
    assert next(calls, None) is None  # no generation the plans do not account for
    for step in range(STEPS, STEPS + extra_plans):
        planned.update(plan_of(step, 0))
    # coverage: within a pass no prompt twice
    assert all(len(ids) == len(set(ids)) for ids in used.values())
    for name, n_slots in planned.items():
        assert state[name]["prompts"] == ROWS
        assert state[name]["pass"] * ROWS + state[name]["position"] == n_slots
        assert state[name]["skipped"] == 0.0
    # each report's share of zero-variance groups moved the run's recent share
    for name in rows:
        share, seen = 0.0, False
        for r in steps:
            if f"generated_groups/{name}" in r:
                now = r[f"zero_variance_groups/{name}"] / r[f"generated_groups/{name}"]
                share = (1 - RECENT_ALPHA) * share + RECENT_ALPHA * now if seen else now
                seen = True
        assert state[name]["zero_variance"] == pytest.approx(share)
    assert state["rev-1"]["zero_variance"] == 1.0
    return len(generated)


@pytest.mark.parametrize("flags", [(), ("--dynamic-sampling",)], ids=["batch", "dynamic"])
def test_service_plans_the_prompts_the_trainer_generates(
    tmp_path: Path, service: LocalService, monkeypatch: pytest.MonkeyPatch, flags: tuple[str]
) -> None:
    out, generated = _train(tmp_path, monkeypatch, "--service-url", service.url, *flags)
    record = read_run(out)
    assert record is not None and record.token
    with CurriculumClient(service.url, record.run_id, record.token) as client:
        info = client.run_info()  # before any plan below: kept plans move nothing
        assert info["config"]["prompts"] == {f"rev-{k}": ROWS for k in LEVELS}
        assert info["config"]["prompt_selection"]["mode"] == "coverage"

        def plan_of(step: int, round: int) -> StepPlan:
            plan = client.plan(step, PROMPTS, round)
            assert plan.source == "service"
            return StepPlan(plan.assignment, plan.prompt_ids)

        rounds = _check(out, generated, plan_of, info["prompts"], extra_plans=1)
        assert rounds > STEPS if flags else rounds == STEPS  # dynamic sampling refilled
        stats = info["stats"]
    groups = sum(
        v for r in read_metrics(out / "metrics.jsonl") for k, v in r.items() if "generated_gr" in k
    )
    assert sum(s["n"] for s in stats.values()) == GROUP * groups  # every group reported


@pytest.mark.parametrize("flags", [(), ("--dynamic-sampling",)], ids=["batch", "dynamic"])
def test_local_scheduler_plans_the_prompts_the_trainer_generates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: tuple[str]
) -> None:
    made: list[LocalScheduler] = []

    class Kept(LocalScheduler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(cli, "LocalScheduler", Kept)
    out, generated = _train(tmp_path, monkeypatch, "--scheduler", "local", *flags)
    (scheduler,) = made
    model = scheduler.model
    assert model.prompts is not None
    state = diagnostics(model.prompts, model.names)  # before any plan below

    def plan_of(step: int, round: int) -> StepPlan:
        return scheduler.plan(step, PROMPTS, round)  # kept: the same plan, nothing moved

    rounds = _check(out, generated, plan_of, state, extra_plans=0)
    assert rounds > STEPS if flags else rounds == STEPS  # dynamic sampling refilled
    groups = Counter[str]()
    for r in read_metrics(out / "metrics.jsonl"):
        groups.update({k.split("/", 1)[1]: v for k, v in r.items() if "generated_gr" in k})
    assert dict(zip(model.names, model.prompts.groups.tolist(), strict=True)) == {
        name: groups[name] for name in model.names
    }


def test_prompt_selection_config_is_checked() -> None:
    """Parameters without the switch, or ones prompt selection does not take, are refused
    before any run starts."""
    with pytest.raises(ValueError, match="needs prompt_selection"):
        TrainConfig(prompt_selection_params={"mode": "coverage"})
    with pytest.raises(ValueError, match="unknown prompt_selection parameter"):
        TrainConfig(prompt_selection=True, prompt_selection_params={"modes": "coverage"})
    TrainConfig(prompt_selection=True, prompt_selection_params={"mode": "coverage"})
