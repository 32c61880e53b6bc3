"""verl 0.9+: ``CurriculumPPOTrainer``, verl's synchronous v1 trainer with each step's batch
composed by the curriculum's plan.

verl 0.8 removed the ``data.sampler`` curriculum hook; the v1 trainer (``trainer.use_v1``)
is extended by subclassing. :class:`CurriculumPPOTrainer` subclasses ``PPOTrainerSync`` and
overrides these methods, each calling verl's own:

- ``_next_train_batch``: step ``g``'s prompts (verl's ``global_steps``, from 1) are the rows
  of the plan of step ``g`` for ``data.train_batch_size`` prompts, slot ``i`` a row of
  ``assignment[i]`` drawn by :class:`trainer_client.sampler.CurriculumBatchSampler` (the
  ``prompt_ids[i]``-th row of it in a run that declares its prompts), then collated and
  handed to the rollout as verl's own batches are, each prompt under a new verl ``uid``
  whose row the trainer keeps. Prompts verl asks for later in the step (its replay
  buffer's refills, after DAPO's group filter, ``algorithm.filter_groups``, dropped groups,
  or to replace failed rollouts) are the next slots of the plans of the step's rounds 1, 2,
  ... (each ``data.train_batch_size`` slots, taken in order as verl asks, whatever the
  number it asks for at a time).
- ``_build_replay_buffer``: verl's synchronous ``ReplayBuffer``, as verl builds it, as a
  :class:`CurriculumReplayBuffer`, which hands the trainer every group it clears (the
  groups DAPO's filter dropped, and the surplus groups verl generated past the batch and
  discards) before clearing it.
- ``_compute_advantage``: after verl's advantages, it reads each trajectory's advantages,
  response mask, reward scores, ``data_source`` and ``uid`` back from the TransferQueue and
  keeps each one's mean ``|advantage|`` over the response mask and its reward (padding rows
  left out);
- ``step``: after verl's step (every mini-batch of ``parameter_sync_step``), one report of
  every trajectory the step generated, by ``data_source``, as ``{run}/step-{g}/rank-0``: the
  trained ones with verl's advantages, the groups DAPO dropped as ``filtered`` (advantage 0,
  their real rewards), the surplus ones with the advantages verl's estimator gives them;
  in a run that declares its prompts, with the step's ``groups``: every generated group,
  named by its uid's row;
- ``_save_checkpoint`` / ``_load_checkpoint``: ``global_step_{g}/curriculum.json`` holds the
  client's checkpoint (made after step ``g``'s report), written before verl's own save marks
  the step latest and calls its checkpoint callback, and restored on resume, so the resumed
  run goes on with step ``g + 1``'s plan.

Launch it with :mod:`trainer_client.integrations.verl.main_ppo` (verl's ``main_ppo`` with
this trainer as ``trainer.v1.trainer_mode=sync``). The settings are the config's
``curriculum`` block and the environment (:mod:`trainer_client.integrations.verl.settings`).
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np

from trainer_client.integrations.verl.versions import unsupported

try:
    from verl.trainer.ppo.v1 import PPOTrainerSync
except ModuleNotFoundError as error:  # verl up to 0.8: no v1 trainer
    raise unsupported("trainer", error) from error
import transfer_queue as tq
from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer
from verl.trainer.ppo.v1.utils import compute_advantage_for_multi_trajectories
from verl.utils import tensordict_utils as tu
from verl.utils.dataset.rl_dataset import collate_fn

from trainer_client.client import CurriculumClient
from trainer_client.integrations.reporting import row_sums
from trainer_client.integrations.verl.settings import connect, resolve
from trainer_client.integrations.verl.steps import (
    StepLedger,
    estimator_advantages,
    sequence_values,
    step_draw,
)
from trainer_client.sampler import CurriculumBatchSampler, labels_of

CHECKPOINT_FILE = "curriculum.json"
TRAJECTORY_FIELDS = ["response_mask", "rm_scores", "data_source", "uid"]
logger = logging.getLogger(__name__)


class CurriculumReplayBuffer(ReplayBuffer):
    """verl's synchronous ``ReplayBuffer`` that hands ``on_clear`` every training group it
    clears, before clearing it: ``on_clear(partition_id, keys, dropped)``, ``keys`` the
    groups' trajectory keys in the TransferQueue, ``dropped`` the uids among them that
    DAPO's filter evicted (the others are the surplus verl discards once the batch is
    full). verl's sampling (its polling, eviction, refill credit and selection) is its own,
    unchanged."""

    def __init__(self, *args: Any, on_clear: Callable[[str, list[str], set[str]], None],
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(*args, **kwargs)
        self.on_clear = on_clear
        self._dapo_uids: set[str] = set()  # the uids DAPO is evicting in this pass

    @classmethod
    def like(
        cls, buffer: ReplayBuffer, on_clear: Callable[[str, list[str], set[str]], None]
    ) -> CurriculumReplayBuffer:
        """``buffer`` (as verl's ``_build_replay_buffer`` made it) as this class: verl's
        ``ReplayBuffer`` keeps each constructor argument as the attribute of its name."""
        names = [n for n in inspect.signature(ReplayBuffer.__init__).parameters if n != "self"]
        return cls(**{name: getattr(buffer, name) for name in names}, on_clear=on_clear)

    def _evict_terminal_groups(
        self, global_steps: int, partition_id: str, eviction_reasons: tuple[Any, ...]
    ) -> Any:
        self._dapo_uids = set(eviction_reasons[1])  # (stale, DAPO-filtered, failed, counts)
        try:
            return super()._evict_terminal_groups(global_steps, partition_id, eviction_reasons)
        finally:
            self._dapo_uids = set()

    def _clear_groups(self, partition_id: str, uids: set[str]) -> None:
        if uids and partition_id == "train":
            keys = [key for key in self.partitions[partition_id] if key.split("_")[0] in uids]
            if keys:  # a failed group may have no trajectory
                self.on_clear(partition_id, keys, uids & self._dapo_uids)
        super()._clear_groups(partition_id, uids)


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
        self._uid_rows: dict[str, int] = {}  # the dataset row of each uid the step's plans made
        self._refill_round = 0  # the step's last refill round asked for
        self._refill_rows: list[int] = []  # its rows not handed out yet
        self._ledger = StepLedger()  # the step's trajectories so far

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
        if self._draw is None:
            return super()._next_train_batch(num_prompts)
        if self._planned_step != step and num_prompts in (None, size):  # the step's batch
            self._planned_step = step
            self._uid_rows, self._refill_round, self._refill_rows = {}, 0, []
            return self._batch_of(self._draw.global_batch(step), step)
        if self._planned_step != step:  # pragma: no cover - verl asks for the batch first
            raise RuntimeError(f"verl asked for {num_prompts} prompts before step {step}'s batch")
        return self._batch_of(self._refills(step, int(num_prompts or size)), step)

    def _refills(self, step: int, count: int) -> list[int]:
        """The next ``count`` slots of the step's refill rounds 1, 2, ..., in order."""
        assert self._draw is not None
        rows: list[int] = []
        while len(rows) < count:
            if not self._refill_rows:
                self._refill_round += 1
                self._refill_rows = self._draw.global_batch(step, self._refill_round)
            take = count - len(rows)
            rows += self._refill_rows[:take]
            self._refill_rows = self._refill_rows[take:]
        return rows

    def _batch_of(self, rows: list[int], step: int) -> Any:
        """verl's batch of the dataset's ``rows`` (collated as its loader does), each prompt
        under a new uid whose row is kept."""
        batch_dict = collate_fn([self.train_dataset[i] for i in rows])
        uids = [str(uuid.uuid4()) for _ in rows]
        self._uid_rows.update(zip(uids, rows, strict=True))
        batch_dict["uid"] = np.array(uids, dtype=object)
        batch = tu.get_tensordict(batch_dict)
        tu.assign_non_tensor_data(batch, "global_steps", step)
        return batch

    def _build_replay_buffer(self) -> Any:
        buffer = super()._build_replay_buffer()
        if type(buffer) is ReplayBuffer:  # verl's own (a custom sampler is left as it is)
            return CurriculumReplayBuffer.like(buffer, self._groups_cleared)
        return buffer

    # --- reporting ----------------------------------------------------------------------------

    def _compute_advantage(self, batch: Any, metrics: dict[str, Any]) -> Any:
        batch = super()._compute_advantage(batch, metrics)
        data = tq.kv_batch_get(
            keys=batch.keys,
            partition_id=batch.partition_id,
            select_fields=[*TRAJECTORY_FIELDS, "advantages"],
        )
        sources = [str(s) for s in data.pop("data_source").tolist()]
        uids = [str(u) for u in data.pop("uid").tolist()]
        padded = data.to_padded_tensor()  # nested (batch, j) -> (batch, longest response)
        advantages, rewards = sequence_values(
            padded["advantages"], padded["response_mask"], padded["rm_scores"]
        )
        values = rewards or [None] * len(sources)
        real = [i for i, tag in enumerate(batch.tags) if not tag.get("is_padding", False)]
        self._ledger.trained(  # rows that batch balancing added are left out
            [sources[i] for i in real],
            [advantages[i] for i in real],
            [values[i] for i in real],
            [uids[i] for i in real],
            [self._uid_rows.get(uids[i]) for i in real],
        )
        return batch

    def _groups_cleared(self, partition_id: str, keys: list[str], dropped: set[str]) -> None:
        """What :class:`CurriculumReplayBuffer` clears: the groups DAPO dropped (``dropped``
        uids) into the step's ``filtered``, the surplus with its estimated advantages."""
        data = tq.kv_batch_get(
            keys=keys, partition_id=partition_id, select_fields=TRAJECTORY_FIELDS
        )
        sources = [str(s) for s in data.pop("data_source").tolist()]
        uids = [str(u) for u in data.pop("uid").tolist()]
        padded = data.to_padded_tensor()
        mask, scores = padded["response_mask"], padded["rm_scores"]
        rewards = row_sums(scores, mask)
        rows = [self._uid_rows.get(u) for u in uids]
        out = [i for i, u in enumerate(uids) if u in dropped]
        self._ledger.dropped(
            [sources[i] for i in out], [rewards[i] for i in out],
            [uids[i] for i in out], [rows[i] for i in out],
        )  # fmt: skip
        kept = [i for i, u in enumerate(uids) if u not in dropped]
        if not kept:
            return
        algorithm = self.config.algorithm
        advantages = estimator_advantages(
            lambda d: compute_advantage_for_multi_trajectories(
                d,
                batch_keys=[keys[i] for i in kept],
                adv_estimator=algorithm.adv_estimator,
                gamma=algorithm.gamma,
                lam=algorithm.lam,
                num_repeat=self.config.actor_rollout_ref.rollout.n,
                norm_adv_by_std_in_grpo=algorithm.get("norm_adv_by_std_in_grpo", True),
                config=algorithm,
            ),
            scores[kept],
            mask[kept],
            [uids[i] for i in kept],
            str(algorithm.adv_estimator),
        )
        self._ledger.trained(
            [sources[i] for i in kept],
            advantages if advantages is not None else [None] * len(kept),
            [rewards[i] for i in kept],
            [uids[i] for i in kept],
            [rows[i] for i in kept],
        )

    def step(self, metrics: dict[str, Any], timing_raw: dict[str, Any]) -> Any:
        """verl's step, then one report of every trajectory it generated."""
        self._ledger = StepLedger()
        batch = super().step(metrics, timing_raw)
        if self.curriculum is not None:
            planned = self._planned_step == self.global_steps
            self._ledger.report(self.curriculum, self.global_steps, self._draw if planned else None)
        return batch

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
