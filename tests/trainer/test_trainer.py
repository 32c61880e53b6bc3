"""Short GRPO runs with LocalScheduler: reports, weights, loss, checkpoints, resume, CLI."""

import json
import math
from pathlib import Path

import pytest
import torch

from trainer_client.grpo.cli import train_main
from trainer_client.grpo.config import TrainConfig
from trainer_client.grpo.metrics import read_metrics
from trainer_client.grpo.scheduler import LocalScheduler
from trainer_client.grpo.tasks import build_distributions
from trainer_client.grpo.trainer import GRPOTrainer, split_by_distribution


class RecordingScheduler(LocalScheduler):
    """LocalScheduler that remembers every plan and report it received."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.plans: list[list[str]] = []
        self.reports: list[tuple[int, dict, dict]] = []

    def plan(self, step: int, batch_size: int, round: int = 0) -> list[str]:
        self.plans.append(super().plan(step, batch_size, round))
        return self.plans[-1]

    def report(self, step, advantages, rewards=None, filtered=None) -> None:
        self.reports.append((step, advantages, rewards))
        super().report(step, advantages, rewards, filtered)


def small_config(tmp_path: Path, **overrides) -> TrainConfig:
    fields = dict(
        levels=[1, 2, 3],
        train_size=40,
        test_size=8,
        steps=4,
        prompts_per_step=6,
        group_size=4,
        max_new_tokens=4,
        eval_every=2,
        output_dir=str(tmp_path),
        warmstart_steps=20,
        warmstart_batch=16,
    )
    return TrainConfig(**(fields | overrides))


def make_trainer(config: TrainConfig, resume: Path | None = None):
    dists = build_distributions(
        "reverse", config.levels, config.seed, config.train_size, config.test_size
    )
    scheduler = RecordingScheduler([d.name for d in dists], config.strategy, config.seed)
    return GRPOTrainer(config, scheduler, resume, dists, progress=False), scheduler


def test_split_by_distribution() -> None:
    values = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert split_by_distribution(["a", "b", "a"], values, 2) == {
        "a": [1.0, 2.0, 5.0, 6.0],
        "b": [3.0, 4.0],
    }


def test_short_run_reports_every_sample_and_moves_weights(tmp_path: Path) -> None:
    trainer, scheduler = make_trainer(small_config(tmp_path))
    final = trainer.train()
    assert trainer.step == 4 and len(scheduler.reports) == 4
    for plan, (_, advantages, rewards) in zip(scheduler.plans, scheduler.reports, strict=True):
        assert len(plan) == 6
        # Each slot of distribution d brings G = 4 samples of d, advantages and rewards alike.
        expected = {d: 4 * plan.count(d) for d in set(plan)}
        assert {d: len(v) for d, v in advantages.items()} == expected
        assert {d: len(v) for d, v in rewards.items()} == expected
        assert all(r in (0.0, 1.0) for v in rewards.values() for r in v)
    assert scheduler.model.n.sum() == 4 * 6 * 4
    assert max(abs(w - 1 / 3) for w in scheduler.weights().values()) > 1e-3
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert records[0]["event"] == "config" and records[0]["config"]["steps"] == 4
    steps = [r for r in records if "loss" in r]
    assert len(steps) == 4 and all(math.isfinite(r["loss"]) for r in steps)
    assert all(r["time/generate"] > 0 and r["time/update"] > 0 for r in steps)
    evals = [r for r in records if "eval/mean" in r]
    assert [r["step"] for r in evals] == [0, 2, 4]
    assert set(final) == {"eval/rev-1", "eval/rev-2", "eval/rev-3", "eval/mean"}
    assert (tmp_path / "checkpoint-4" / "policy" / "tokenizer.json").is_file()


def test_resume_restores_step_scheduler_and_rng(tmp_path: Path) -> None:
    """Resuming from step 2 of a 4-step run replays steps 2-3 exactly (same plans, same
    scheduler state), because model, optimizer, RNGs and the scheduler are all restored."""
    config = small_config(tmp_path / "a", eval_every=0, checkpoint_every=2)
    full, full_sched = make_trainer(config)
    full.train()
    resumed, sched = make_trainer(config, resume=tmp_path / "a" / "checkpoint-2")
    assert resumed.step == 2
    assert sched.model.n.sum() == 2 * 6 * 4
    resumed.train()
    assert sched.plans == full_sched.plans[2:]
    assert sched.export() == full_sched.export()
    for p, q in zip(resumed.model.parameters(), full.model.parameters(), strict=True):
        # exactly equal: the reloaded tiny model runs the same (eager) attention kernel
        assert torch.equal(p, q)


def test_several_epochs_and_no_reference(tmp_path: Path) -> None:
    config = small_config(
        tmp_path, ppo_epochs=2, kl_beta=0.0, eval_every=0, steps=2, warmstart_steps=0
    )
    trainer, _ = make_trainer(config)
    assert trainer.reference is None
    record = trainer.train_step()
    assert math.isfinite(record["loss"]) and record["kl"] == 0.0


@pytest.mark.parametrize(
    "bad,match",
    [
        ({"group_size": 1}, "group_size"),
        ({"task": "chess"}, "task"),
        ({"kl_beta": -1.0}, "kl_beta"),
        ({"lr": float("nan")}, "lr"),
        ({"task": "file"}, "data_file"),
        ({"tiny_heads": 3}, "divide"),
    ],
)
def test_config_validation(bad: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TrainConfig(**bad)


def test_config_from_toml_and_unknown_key(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("steps = 7\nlevels = [3, 4]\nstrategy_params = {tau = 0.2}\n")
    config = TrainConfig.from_file(path)
    assert (config.steps, config.levels, config.strategy_params) == (7, [3, 4], {"tau": 0.2})
    with pytest.raises(ValueError, match="unknown config key"):
        TrainConfig.from_dict({"stepz": 3})


def test_train_main_runs_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    config = tmp_path / "c.json"
    config.write_text(
        json.dumps(
            {
                "levels": [2, 3, 4],
                "train_size": 30,
                "test_size": 4,
                "prompts_per_step": 4,
                "group_size": 2,
                "max_new_tokens": 4,
            }
        )
    )
    base = ["--config", str(config), "--output-dir", str(out), "--no-progress", "--eval-every", "0"]
    # 4 prompts over 3 distributions: the counts differ, so DUMP's weights must move.
    # the default scheduler: a real service, started on its embedded Redis in OUTPUT_DIR
    assert train_main([*base, "--steps", "2", "--strategy", "dump-ucb"]) == 0
    assert train_main([*base, "--steps", "3", "--resume", "auto"]) == 0
    saved = json.loads((out / "checkpoint-3" / "config.json").read_text())
    assert saved["steps"] == 3 and saved["strategy"] == "dump-ucb"
    assert (out / "scheduler" / "service.log").exists()
    saved_scheduler = json.loads((out / "checkpoint-3" / "scheduler.json").read_text())
    assert saved_scheduler["source"] == "service" and saved_scheduler["pending"] == []
    snapshot = saved_scheduler["snapshot"]
    # every report arrived: 3 steps x 4 prompts x 2 completions, across the resume
    assert sum(d["n"] for d in snapshot["distributions"].values()) == 3 * 4 * 2
    assert [e["step"] for e in snapshot["history"]][-2:] == [1, 2]
    last = snapshot["history"][-1]["weights"]
    assert max(abs(w - 1 / 3) for w in last) > 1e-3  # the weights moved off uniform
