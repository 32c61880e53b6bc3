"""Dynamic sampling in the bundled trainer, against a real service process on loopback:
every generated group is reported (the dropped ones with zero advantages), the metrics say
what was generated and what was trained, and each round's plan is the one generated from."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from trainer_client import CurriculumClient, LocalService
from trainer_client.grpo import cli
from trainer_client.grpo import config as grpo_config
from trainer_client.grpo.metrics import read_metrics
from trainer_client.grpo.tasks import Distribution, build_distributions
from trainer_client.run_files import read_run

PROMPTS, GROUP, STEPS, ROUNDS = 4, 2, 3, 3
TINY = {
    "levels": [1, 2, 3],
    "train_size": 30,
    "test_size": 4,
    "prompts_per_step": PROMPTS,
    "group_size": GROUP,
    "max_new_tokens": 3,
    "warmstart_steps": 0,
    "eval_every": 0,
    "max_rounds": ROUNDS,
}
"""A few seconds of the tiny model: three distributions, small batches."""


def _parity_tasks(*args: object) -> list[Distribution]:
    """The reversal task with rewards that split groups often: the parity of the sum
    of its characters' codes (rev-1: always 0, so every group of it is dropped)."""

    def parity(texts: list[str], answers: list[str]) -> list[float]:
        return [float(sum(map(ord, t)) % 2) for t in texts]

    def zero(texts: list[str], answers: list[str]) -> list[float]:
        return [0.0] * len(texts)

    return [
        dataclasses.replace(d, reward=zero if d.name == "rev-1" else parity)
        for d in build_distributions(*args)  # type: ignore[arg-type]
    ]


@pytest.fixture
def service(redis_url: str, tmp_path: Path) -> Iterator[LocalService]:
    with LocalService(tmp_path / "service", env={"REDIS_URL": redis_url}) as svc:
        yield svc


def test_dynamic_sampling_reports_every_generated_group(
    tmp_path: Path, service: LocalService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A few steps of --dynamic-sampling: the run's counts are every generated completion,
    trained or dropped; the metrics name the groups generated and trained per distribution;
    the groups generated in each round are the first slots of that round's plan."""
    monkeypatch.setattr(grpo_config, "build_distributions", _parity_tasks)
    config = tmp_path / "c.json"
    config.write_text(json.dumps(TINY))
    out = tmp_path / "run"
    args = ["--config", str(config), "--output-dir", str(out), "--no-progress",
            "--service-url", service.url, "--steps", str(STEPS), "--dynamic-sampling"]  # fmt: skip
    assert cli.train_main(args) == 0
    steps = [r for r in read_metrics(out / "metrics.jsonl") if "round_groups" in r]
    assert [r["step"] for r in steps] == list(range(STEPS))
    record = read_run(out)
    assert record is not None and record.token
    generated: Counter[str] = Counter()
    with CurriculumClient(service.url, record.run_id, record.token) as client:
        for r in steps:
            groups = {k.split("/", 1)[1]: v for k, v in r.items() if k.startswith("generated_")}
            trained = {k.split("/", 1)[1]: v for k, v in r.items() if k.startswith("trained_")}
            assert set(trained) == set(groups)
            assert all(0 <= trained[d] <= groups[d] for d in groups)
            assert sum(trained.values()) <= PROMPTS
            rounds = r["round_groups"]
            assert 1 <= len(rounds) <= ROUNDS and rounds[0] == PROMPTS
            # a refill round generates the slots still missing, from the first of its plan
            assert len(rounds) == 1 or sum(trained.values()) == PROMPTS or len(rounds) == ROUNDS
            used: Counter[str] = Counter()
            for i, n in enumerate(rounds):
                plan = client.plan(r["step"], PROMPTS, round=i)
                assert plan.source == "service" and plan.round == i
                used.update(plan.assignment[:n])
            assert used == Counter(groups)
            # trained groups are counted beside the drawn ones in the metrics' own count
            assert {d: v for d, v in trained.items() if v} == {
                k.split("/", 1)[1]: v for k, v in r.items() if k.startswith("count/")
            }
            generated.update(groups)
        stats = client.run_info()["stats"]
    # every generated completion was reported, trained or dropped
    assert {d: s["n"] for d, s in stats.items() if s["n"]} == {
        d: GROUP * g for d, g in generated.items()
    }
    assert sum(len(r["round_groups"]) for r in steps) > STEPS  # some step refilled
    trained_total = sum(v for r in steps for k, v in r.items() if k.startswith("trained_"))
    assert 0 < trained_total < sum(generated.values())  # some trained, some dropped
    assert all(r.get("trained_groups/rev-1", 0) == 0 for r in steps)
    assert generated["rev-1"] > 0 and stats["rev-1"]["window_mean"] == 0.0
