"""One process of a two-process CurriculumGRPOTrainer run (launched by torch.distributed.run
from test_trl.py): trains a few rounds and writes what its reward function saw. Only the main
process is given the run's token: the other gets it from the main process."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

from accelerate import PartialState

from tests.integrations.test_trl import Reward, _trainer
from trainer_client.integrations.trl import CurriculumRun


def main(url: str, run_id: str, token: str, model_dir: str, out: str, steps: int) -> None:
    warnings.filterwarnings("ignore", category=FutureWarning)
    rank = PartialState(cpu=True).process_index
    reward = Reward()
    # the main process attaches with the token and hands the run to the other
    run = CurriculumRun(
        url,
        run_id=run_id,
        token=token if rank == 0 else None,
        strategy={"name": "dump-ucb"},
        seed=1,
    )
    trainer = _trainer(model_dir, out, run, reward, steps)
    trainer.train()
    trainer.curriculum.close()
    (Path(out) / f"rank-{rank}.json").write_text(json.dumps(reward.rounds))


if __name__ == "__main__":
    url, run_id, token, model_dir, out, steps = sys.argv[1:]
    main(url, run_id, token, model_dir, out, int(steps))
