"""One start of a CurriculumGRPOTrainer run, in a process of its own (launched by test_trl.py):
the trainer attaches through a ``CurriculumRun`` that names no token, trains to ``steps``
(resuming from ``resume`` unless it is empty), and its reward function fails in round
``fail_at`` (-1: never). Writes the run id and token its client uses, and the rounds its
reward function saw, to ``start.json`` in ``out`` before it fails or returns."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

from tests.integrations.test_trl import Reward, _trainer
from trainer_client.integrations.trl import CurriculumRun

RUN_ID = "trl-restart"


class FailingReward(Reward):
    """``Reward``, raising in round ``fail_at``: a crash after the run was created."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.fail_at = fail_at

    def __call__(self, *args: Any, curriculum_round: list[int], **kw: Any) -> list[float]:
        if curriculum_round[0] == self.fail_at:
            raise RuntimeError(f"round {self.fail_at} fails")
        return super().__call__(*args, curriculum_round=curriculum_round, **kw)


def main(url: str, model_dir: str, out: str, steps: int, resume: str, fail_at: int) -> None:
    warnings.filterwarnings("ignore", category=FutureWarning)
    reward = FailingReward(fail_at)
    run = CurriculumRun(url, run_id=RUN_ID, strategy={"name": "dump-ucb"}, seed=1)
    trainer = _trainer(model_dir, out, run, reward, steps)
    client = trainer.curriculum
    try:
        trainer.train(resume_from_checkpoint=resume or None)
    finally:
        seen = {"run_id": client.run_id, "token": client.token, "rounds": reward.rounds}
        (Path(out) / "start.json").write_text(json.dumps(seen))


if __name__ == "__main__":
    url, model_dir, out, steps, resume, fail_at = sys.argv[1:]
    main(url, model_dir, out, int(steps), resume, int(fail_at))
