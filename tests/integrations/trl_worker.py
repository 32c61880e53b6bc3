"""One process of a two-process CurriculumGRPOTrainer run (launched by torch.distributed.run
from test_trl.py): trains a few rounds and writes what its reward function saw. Only the main
process is given the run's token: the other gets it from the main process. With ``prompts``,
the main process creates the run with prompt selection (no token given), 4 completions a
prompt, 6 rows a process."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

from accelerate import PartialState

from tests.integrations.test_trl import Reward, _trainer, odd_length
from trainer_client.integrations.trl import CurriculumRun


def main(
    url: str, run_id: str, token: str, model_dir: str, out: str, steps: int, prompts: bool
) -> None:
    warnings.filterwarnings("ignore", category=FutureWarning)
    rank = PartialState(cpu=True).process_index
    reward = Reward(odd_length if prompts else None)
    # the main process attaches with the token (or creates the run) and hands it to the other
    run = CurriculumRun(
        url,
        run_id=run_id,
        token=token if rank == 0 and token else None,
        strategy={"name": "dump-ucb"},
        seed=1,
        prompt_selection={"mode": "coverage"} if prompts else False,
    )
    shape = {"generations": 4, "per_device": 6} if prompts else {}
    trainer = _trainer(model_dir, out, run, reward, steps, **shape)
    trainer.train()
    trainer.curriculum.close()
    seen = {"rounds": reward.rounds, "rows": reward.rows, "rewards": reward.rewards}
    (Path(out) / f"rank-{rank}.json").write_text(json.dumps(seen))


if __name__ == "__main__":
    url, run_id, token, model_dir, out, steps, mode = sys.argv[1:]
    main(url, run_id, token, model_dir, out, int(steps), mode == "prompts")
