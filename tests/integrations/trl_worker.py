"""One process of a two-process CurriculumGRPOTrainer run (launched by torch.distributed.run
from test_trl.py): trains a few rounds and writes what its reward function saw."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

from accelerate import PartialState
from transformers import PrinterCallback

from tests.integrations.test_trl import Reward, _dataset, _grpo_args
from trainer_client import CurriculumClient
from trainer_client.grpo.model import char_tokenizer
from trainer_client.integrations.trl import CurriculumGRPOTrainer


def main(url: str, run_id: str, token: str, model_dir: str, out: str, steps: int) -> None:
    warnings.filterwarnings("ignore", category=FutureWarning)
    rank = PartialState(cpu=True).process_index
    reward = Reward()
    with CurriculumClient(url, run_id, token, rank=rank) as client:
        trainer = CurriculumGRPOTrainer(
            model=model_dir,
            reward_funcs=reward,
            args=_grpo_args(Path(out), steps),
            train_dataset=_dataset(),
            processing_class=char_tokenizer(),
            curriculum=client,
        )
        trainer.remove_callback(PrinterCallback)
        trainer.train()
    (Path(out) / f"rank-{rank}.json").write_text(json.dumps(reward.rounds))


if __name__ == "__main__":
    url, run_id, token, model_dir, out, steps = sys.argv[1:]
    main(url, run_id, token, model_dir, out, int(steps))
