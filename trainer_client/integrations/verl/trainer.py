"""verl 0.9+: ``CurriculumPPOTrainer``, verl's synchronous v1 trainer with each step's batch
composed by the curriculum's plan.

verl 0.8 removed the ``data.sampler`` curriculum hook; the v1 trainer (``trainer.use_v1``)
is extended by subclassing. :class:`CurriculumPPOTrainer` subclasses ``PPOTrainerSync`` and
overrides four methods, each calling verl's own:

- ``_next_train_batch``: step ``g``'s prompts (verl's ``global_steps``, from 1) are the rows
  of the plan of step ``g`` for ``data.train_batch_size`` prompts, slot ``i`` a row of
  ``assignment[i]`` drawn by :class:`trainer_client.sampler.CurriculumBatchSampler` (the
  ``prompt_ids[i]``-th row of it in a run that declares its prompts), then collated and
  handed to the rollout as verl's own batches are, each prompt under a new verl ``uid``
  whose row the trainer keeps. Prompts verl draws later in the step to replace failed
  rollouts (or, with DAPO's group filtering, filtered groups) come from verl's data
  loader, as without the curriculum.
- ``_compute_advantage``: after verl's advantages, it reads each trajectory's advantages,
  response mask, reward scores, ``data_source`` and ``uid`` back from the TransferQueue and
  keeps each one's mean ``|advantage|`` over the response mask and its reward (padding rows
  left out);
- ``step``: after verl's step (every mini-batch of ``parameter_sync_step``), one report of
  the step by ``data_source``, as ``{run}/step-{g}/rank-0``; in a run that declares its
  prompts, with the step's ``groups``: the trajectories of each ``uid`` the trainer made,
  named by that uid's row (prompts verl drew itself are in the advantages, not the groups);
- ``_save_checkpoint`` / ``_load_checkpoint``: ``global_step_{g}/curriculum.json`` holds the
  client's checkpoint (made after step ``g``'s report), written before verl's own save marks
  the step latest and calls its checkpoint callback, and restored on resume, so the resumed
  run goes on with step ``g + 1``'s plan.

Launch it with :mod:`trainer_client.integrations.verl.main_ppo` (verl's ``main_ppo`` with
this trainer as ``trainer.v1.trainer_mode=sync``). The settings are the config's
``curriculum`` block and the environment (:mod:`trainer_client.integrations.verl.settings`).
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from typing import Any

import numpy as np

from trainer_client.integrations.verl.versions import unsupported

try:
    from verl.trainer.ppo.v1 import PPOTrainerSync
except ModuleNotFoundError as error:  # verl up to 0.8: no v1 trainer
    raise unsupported("trainer", error) from error
import transfer_queue as tq
from verl.utils import tensordict_utils as tu
from verl.utils.dataset.rl_dataset import collate_fn

from trainer_client.client import CurriculumClient
from trainer_client.integrations.verl.settings import connect, resolve
from trainer_client.integrations.verl.steps import (
    prompt_groups,
    report_step,
    sequence_values,
    step_draw,
)
from trainer_client.sampler import CurriculumBatchSampler, labels_of

CHECKPOINT_FILE = "curriculum.json"
logger = logging.getLogger(__name__)


class CurriculumPPOTrainer(PPOTrainerSync):
    """``PPOTrainerSync`` whose batches follow the curriculum; see the module doc.
    ``client`` replaces the client that the config's ``curriculum`` block would make."""

    def __init__(self, config: Any, client: CurriculumClient | None = None) -> None:
        if not config.trainer.get("use_v1", False) or config.trainer.v1.trainer_mode != "sync":
            raise ValueError(
                "CurriculumPPOTrainer is verl's synchronous v1 trainer: set trainer.use_v1=True "
                f"and trainer.v1.trainer_mode=sync (got {config.trainer.v1.trainer_mode!r})"
            )
        super().__init__(config)
        self.curriculum_settings = resolve(config.get("curriculum")) if client is None else {}
        self.curriculum = client
        self._draw: CurriculumBatchSampler | None = None
        self._planned_step: int | None = None
        self._step_samples: list[tuple[str, float, float | None]] = []  # the step's so far
        self._uid_rows: dict[str, int] = {}  # the dataset row of each uid of the step's batch
        self._step_uids: list[tuple[str, float | None]] = []  # each sample's uid and reward

    # --- composing the batch ----------------------------------------------------------------

    def _init_dataloader(self) -> None:
        super()._init_dataloader()
        labels = labels_of(self.train_dataset)
        if self.curriculum is None:
            self.curriculum = connect(self.curriculum_settings, labels)
        seed = int(self.curriculum_settings.get("seed", 0))
        size = int(self.config.data.train_batch_size)
        self._draw = step_draw(labels, self.curriculum, size, seed)

    def _next_train_batch(self, num_prompts: int | None = None) -> Any:
        step = self.global_steps
        size = int(self.config.data.train_batch_size)
        if self._draw is None or num_prompts not in (None, size) or self._planned_step == step:
            return super()._next_train_batch(num_prompts)  # a refill: verl's own draw
        rows = self._draw.global_batch(step)
        self._planned_step = step
        batch_dict = collate_fn([self.train_dataset[i] for i in rows])
        uids = [str(uuid.uuid4()) for _ in rows]
        self._uid_rows = dict(zip(uids, rows, strict=True))
        batch_dict["uid"] = np.array(uids, dtype=object)
        batch = tu.get_tensordict(batch_dict)
        tu.assign_non_tensor_data(batch, "global_steps", step)
        return batch

    # --- reporting ----------------------------------------------------------------------------

    def _compute_advantage(self, batch: Any, metrics: dict[str, Any]) -> Any:
        batch = super()._compute_advantage(batch, metrics)
        fields = ["advantages", "response_mask", "rm_scores", "data_source", "uid"]
        data = tq.kv_batch_get(
            keys=batch.keys, partition_id=batch.partition_id, select_fields=fields
        )
        sources = [str(s) for s in data.pop("data_source").tolist()]
        uids = [str(u) for u in data.pop("uid").tolist()]
        padded = data.to_padded_tensor()  # nested (batch, j) -> (batch, longest response)
        advantages, rewards = sequence_values(
            padded["advantages"], padded["response_mask"], padded["rm_scores"]
        )
        values = rewards or [None] * len(sources)
        for source, advantage, reward, uid, tag in zip(
            sources, advantages, values, uids, batch.tags, strict=True
        ):
            if tag.get("is_padding", False):  # rows that batch balancing added
                continue
            self._step_samples.append((source, advantage, reward))
            self._step_uids.append((uid, reward))
        return batch

    def step(self, metrics: dict[str, Any], timing_raw: dict[str, Any]) -> Any:
        """verl's step, then one report of all its samples by ``data_source``."""
        self._step_samples, self._step_uids = [], []
        batch = super().step(metrics, timing_raw)
        if self._step_samples and self.curriculum is not None:
            sources, advantages, rewards = (list(c) for c in zip(*self._step_samples, strict=True))
            groups = self._groups()
            report_step(self.curriculum, self.global_steps, sources, advantages, rewards, groups)
        return batch

    def _groups(self) -> list[dict[str, Any]] | None:
        """The step's groups when its plan named the prompts (``None`` otherwise): the
        trajectories of each uid the trainer made for the plan's batch, with their rewards."""
        planned = self._planned_step == self.global_steps
        if not planned or self._draw is None or not self._draw.names_prompts:
            return None
        uids = [uid for uid, _ in self._step_uids]
        rows = [self._uid_rows.get(uid) for uid in uids]
        return prompt_groups(self._draw, uids, rows, [reward for _, reward in self._step_uids])

    # --- checkpoints --------------------------------------------------------------------------

    def _save_checkpoint(self) -> None:
        """The curriculum first, then verl's checkpoint: verl ends its save by writing
        ``latest_checkpointed_iteration.txt`` and calling ``trainer.checkpoint_callback_class``'s
        ``on_save``, so once a step is marked latest (or uploaded) its folder holds the
        curriculum too."""
        if self.curriculum is not None:
            folder = os.path.join(
                self.config.trainer.default_local_dir, f"global_step_{self.global_steps}"
            )
            os.makedirs(folder, exist_ok=True)
            state = {"step": self.global_steps, "client": self.curriculum.checkpoint()}
            path = os.path.join(folder, CHECKPOINT_FILE)
            with open(f"{path}.tmp", "w", encoding="utf-8") as f:
                json.dump(state, f)
            os.replace(f"{path}.tmp", path)  # a crash mid-write leaves no half file
        super()._save_checkpoint()

    def _load_checkpoint(self) -> None:
        super()._load_checkpoint()
        if self.global_steps == 0 or self.curriculum is None:
            return
        folder = self._resumed_folder()
        path = os.path.join(folder, CHECKPOINT_FILE)
        if not os.path.exists(path):
            logger.warning("no %s in %s: the curriculum goes on from the service's state",
                           CHECKPOINT_FILE, folder)  # fmt: skip
            return
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
        self.curriculum.restore(state["client"])

    def _resumed_folder(self) -> str:
        """The ``global_step_{g}`` folder verl resumed from (as its ``_load_checkpoint``
        finds it)."""
        trainer = self.config.trainer
        if trainer.resume_mode == "resume_path":
            folder = str(trainer.resume_from_path)
        else:
            folder = os.path.join(trainer.default_local_dir, f"global_step_{self.global_steps}")
        return folder if os.path.isabs(folder) else os.path.join(os.getcwd(), folder)
