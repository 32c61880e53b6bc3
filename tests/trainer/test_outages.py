"""The bundled trainer through scheduler outages: a real service process is killed with
SIGKILL and started again on the same port and Redis while a real GRPO run trains.

Checkpoints, the final save and a resume all succeed while the service is down, training
exits 0, and once the service has everything, every trained sample is counted exactly once:
the run's counts equal steps x prompts x group size.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import wait_until
from trainer_client import CurriculumClient, LocalService
from trainer_client.grpo import cli
from trainer_client.grpo.trainer import GRPOTrainer
from trainer_client.run_files import (
    buffer_path,
    buffered_run_id,
    pending_calls,
    read_run,
    replay_main,
)

PROMPTS, GROUP = 4, 2


@pytest.fixture
def service(redis_url: str, tmp_path: Path) -> Iterator[LocalService]:
    """A service process on the session Redis, not started: each test starts and kills it."""
    svc = LocalService(tmp_path / "service", env={"REDIS_URL": redis_url})
    yield svc
    svc.stop()


def _config(tmp_path: Path) -> Path:
    """A tiny run's config file: 4 prompts x 2 completions a step, a checkpoint every 3."""
    config = tmp_path / "c.json"
    config.write_text(
        json.dumps(
            {
                "levels": [2, 3, 4],
                "train_size": 30,
                "test_size": 4,
                "prompts_per_step": PROMPTS,
                "group_size": GROUP,
                "max_new_tokens": 4,
                "warmstart_steps": 0,
                "eval_every": 0,
                "checkpoint_every": 3,
                "scheduler_drain_s": 1.0,
            }
        )
    )
    return config


def _train(
    tmp_path: Path,
    service: LocalService,
    monkeypatch: pytest.MonkeyPatch,
    events: dict[int, Callable[[], None]],
    *extra: str,
) -> int:
    """``train_main`` against ``service``, running ``events[step]`` before step ``step``."""

    class Scripted(GRPOTrainer):
        def train_step(self) -> dict:
            if self.step in events:
                events.pop(self.step)()
            return super().train_step()

    monkeypatch.setattr(cli, "GRPOTrainer", Scripted)
    config = _config(tmp_path)
    out = tmp_path / "run"
    return cli.train_main(
        ["--config", str(config), "--output-dir", str(out), "--no-progress",
         "--service-url", service.url, *extra]
    )  # fmt: skip


def _counted(service: LocalService, out: Path) -> int:
    record = read_run(out)
    assert record is not None and record.token
    with CurriculumClient(service.url, record.run_id, record.token) as client:
        return sum(s["n"] for s in client.run_info()["stats"].values())


def test_outages_at_the_start_across_checkpoints_and_at_the_end_lose_nothing(
    tmp_path: Path,
    service: LocalService,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Down before the run exists, up at step 4, SIGKILLed at step 5 and never back before
    the end: the checkpoints and the final save are local, training exits 0, and ``replay``
    hands over the rest; every sample is counted once."""
    out = tmp_path / "run"
    code = _train(
        tmp_path, service, monkeypatch, {4: service.start, 5: service.kill}, "--steps", "8"
    )
    assert code == 0
    early = json.loads((out / "checkpoint-3" / "scheduler.json").read_text())
    assert early["source"] == "local"
    # the run did not exist yet: the local state holds all 3 steps, and all are still owed
    assert sum(d["n"] for d in early["snapshot"]["distributions"].values()) == 3 * PROMPTS * GROUP
    assert [p["step"] for p in early["pending"]] == [0, 1, 2]
    final = json.loads((out / "checkpoint-8" / "scheduler.json").read_text())
    assert final["source"] == "local" and final["pending"]
    assert sum(d["n"] for d in final["snapshot"]["distributions"].values()) == 8 * PROMPTS * GROUP
    err = capsys.readouterr().err
    assert "did not take" in err and "python -m trainer_client replay" in err
    assert buffer_path(out).exists()

    service.start()
    assert replay_main([str(out)]) == 0
    assert not buffer_path(out).exists()
    assert _counted(service, out) == 8 * PROMPTS * GROUP


def test_a_resume_while_the_service_is_down_counts_every_sample_once(
    tmp_path: Path, service: LocalService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run checkpoints while the service is down and is then resumed from that checkpoint
    while it is still down; the steps after the checkpoint are trained again. Once the
    service is back the run holds each of the 8 steps once."""
    out = tmp_path / "run"
    service.start()
    assert _train(tmp_path, service, monkeypatch, {2: service.kill}, "--steps", "5") == 0
    mid = json.loads((out / "checkpoint-3" / "scheduler.json").read_text())
    assert mid["source"] == "local" and [p["step"] for p in mid["pending"]] == [2]
    # resume from step 3 with the service down, and bring it back at step 6
    code = _train(
        tmp_path, service, monkeypatch, {6: service.start},
        "--steps", "8", "--resume", str(out / "checkpoint-3"),
    )  # fmt: skip
    assert code == 0
    assert not buffer_path(out).exists()
    assert _counted(service, out) == 8 * PROMPTS * GROUP


def test_a_trainer_killed_during_an_outage_resumes_and_counts_every_sample_once(
    tmp_path: Path, service: LocalService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trainer itself is SIGKILLed while the service is down (the run was never
    created); ``--resume auto`` with the service back trains on and the run holds each
    step once."""
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "trainer_client", "train", "--config", str(_config(tmp_path)),
        "--output-dir", str(out), "--no-progress", "--service-url", service.url,
        "--steps", "40",
    ]  # fmt: skip
    trainer = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: (out / "checkpoint-3").is_dir(), timeout_s=120, what="checkpoint-3")
        wait_until(lambda: pending_calls(out) >= 6, timeout_s=60, what="6 calls owed")
    finally:
        trainer.kill()
        trainer.wait()
    assert trainer.returncode == -signal.SIGKILL
    assert buffered_run_id(out) == read_run(out).run_id  # type: ignore[union-attr]
    service.start()
    assert _train(tmp_path, service, monkeypatch, {}, "--steps", "8", "--resume", "auto") == 0
    assert not buffer_path(out).exists()
    assert _counted(service, out) == 8 * PROMPTS * GROUP
