"""verl 0.5-0.7: ``CurriculumSampler``, a curriculum sampler for verl's ``data.sampler`` hook.

::

    data:
      dataloader_num_workers: 0          # verl's rule for curriculum samplers
      sampler:
        class_path: pkg://trainer_client.integrations.verl.sampler
        class_name: CurriculumSampler
        curriculum: {url: "http://scheduler:8000", run_id: my-verl-run, strategy: dump-ucb}

verl builds it as ``CurriculumSampler(data_source=train_dataset, data_config=config.data)``
in its ``TaskRunner`` and hands every training batch to :meth:`CurriculumSampler.update`
after the advantages are computed. The train files have verl's ``data_source`` column.

- **Steps.** The plan key is verl's ``global_steps`` (1, 2, ...): the sampler numbers the
  batches it draws, across epochs. Each batch is ``data.gen_batch_size`` (else
  ``data.train_batch_size``) prompts, slot ``i`` a row of the plan's ``assignment[i]``
  drawn by :class:`trainer_client.sampler.CurriculumBatchSampler` (uniform within the
  distribution, seeded by the run's seed and the step; in a run that declares its prompts,
  the ``prompt_ids[i]``-th row of it). An epoch is ``len(dataset) // batch`` steps, as verl
  counts it.
- **Reports.** ``update(batch)`` reports the batch's samples once, as
  ``{run}/step-{step}/rank-0``, ``step`` the step whose plan drew them: each sequence's
  mean ``|advantage|`` over its ``response_mask``, and its reward (``token_level_scores``
  summed), grouped by the ``data_source`` of its row. verl calls it on the one controller
  process with the whole batch, so one report a step carries every sample. verl 0.7's
  one-step-off-policy recipe draws step ``g + 1``'s batch before step ``g``'s update: the
  sampler keeps the steps drawn and not reported, in order, and reports the oldest, so
  that update is still step ``g``'s. (verl's rows are built by its dataset, which the
  sampler, yielding indices only, cannot tag with their step; the order is verl's
  contract: each batch drawn is trained and handed to ``update`` once, in the order
  drawn.)
- **Groups** (a run that declares its prompts: ``prompt_selection`` in the settings). The
  report also carries each prompt's group: the responses of one verl ``uid`` (verl gives
  each prompt of a batch its own before the rollout), with their rewards, named by the
  prompt's row. The row cannot come from the batch's order (verl's ``balance_batch``
  reorders the responses) nor from verl's ``index`` (the data's ``extra_info.index``, which
  verl moves out of the batch for the rollout): when the first plan names its prompts, the
  sampler adds ``curriculum_row`` (the row's index) to the ``extra_info`` of every row of
  verl's ``RLHFDataset`` (``dataframe.map``, one pass), which verl keeps beside each
  response up to ``update``. Reward functions see that key in ``extra_info``.
- **Checkpoints.** The sampler is a torchdata ``Stateful``: verl's ``data.pt`` (the train
  dataloader's state) holds the next step, the batches drawn and the client's checkpoint,
  and resuming restores them, so the resumed run goes on with the plan of the step after
  the checkpoint's. verl saves before it calls ``update``, so the checkpoint of step ``g``
  holds the scheduler as of step ``g - 1``'s report; the resumed run does not report step
  ``g`` again.
- **Dynamic sampling** (verl's DAPO recipe, ``recipe/dapo``: several draws a step, a group
  filter, no ``update`` call of its own). Two lines in the recipe's ``fit``:
  ``sampler.record_round(new_batch, kept_prompt_uids, self.config.algorithm)`` after each
  round's filter, which makes the next draw the next round of the same step (the plan of
  ``(step, batch, round)``), and ``sampler.update(batch)`` after the actor update, which
  reports the step: the trained batch, the dropped groups as ``filtered`` and the kept
  groups the recipe cut past ``train_batch_size`` (the surplus) with the advantages verl's
  estimator gives them. See docs/integrations.md, "Dynamic sampling: verl's DAPO recipe".
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sized
from dataclasses import dataclass
from typing import Any

import numpy as np

from trainer_client.integrations.verl.versions import unsupported

try:
    from verl import DataProto
    from verl.experimental.dataset.sampler import AbstractCurriculumSampler
except ModuleNotFoundError as error:  # verl 0.8+: no data.sampler hook
    raise unsupported("sampler", error) from error

from trainer_client.client import CurriculumClient
from trainer_client.integrations.reporting import row_sums
from trainer_client.integrations.verl.settings import connect, resolve
from trainer_client.integrations.verl.steps import (
    StepLedger,
    estimator_advantages,
    sequence_values,
    step_draw,
)
from trainer_client.sampler import labels_of

ROW_KEY = "curriculum_row"
"""The key of ``extra_info`` that holds a row's index in the dataset (runs with prompts)."""


def tag_rows(dataset: Any) -> None:
    """Add ``curriculum_row`` (each row's index) to the ``extra_info`` of every row of verl's
    ``RLHFDataset`` (its ``dataframe``, a ``datasets.Dataset``), which verl carries beside
    every response up to ``update``."""
    frame = getattr(dataset, "dataframe", None)
    if frame is None or not hasattr(frame, "map"):
        raise TypeError(
            "a run that declares its prompts needs each response's dataset row: the sampler "
            "records it in the extra_info of verl's RLHFDataset (its dataframe), which "
            f"{type(dataset).__name__} does not have"
        )

    def tagged(batch: dict[str, list[Any]], indices: list[int]) -> dict[str, list[Any]]:
        infos = batch.get("extra_info") or [None] * len(indices)
        rows = zip(infos, indices, strict=True)
        return {"extra_info": [{**(info or {}), ROW_KEY: i} for info, i in rows]}

    dataset.dataframe = frame.map(tagged, with_indices=True, batched=True)


class CurriculumSampler(AbstractCurriculumSampler):
    """Yields each step's rows by the curriculum's plan; reports each step in :meth:`update`.

    ``data_config`` is verl's ``data`` config; the run's settings are its
    ``sampler.curriculum`` block and the environment
    (:mod:`trainer_client.integrations.verl.settings`). ``client`` replaces the client the
    settings would make.
    """

    def __init__(
        self, data_source: Sized, data_config: Any, client: CurriculumClient | None = None
    ) -> None:
        sampler_config = data_config.get("sampler") or {}
        settings = None if client is not None else resolve(sampler_config.get("curriculum"))
        self.batch_size = int(data_config.get("gen_batch_size") or data_config["train_batch_size"])
        labels = labels_of(data_source)
        self.steps_per_epoch = len(labels) // self.batch_size
        if self.steps_per_epoch < 1:
            raise ValueError(
                f"the train dataset has {len(labels)} rows, fewer than one batch of "
                f"{self.batch_size} (data.gen_batch_size or data.train_batch_size)"
            )
        self.client = client if client is not None else connect(settings or {}, labels)
        self.dataset = data_source
        self.tagged = False  # whether the dataset's rows carry ROW_KEY (runs with prompts)
        seed = int(settings["seed"]) if settings else int(data_config.get("seed") or 0)
        self.draw = step_draw(labels, self.client, self.batch_size, seed)
        self.next_step = 1  # verl's global_steps of the next step's first batch
        self.drawn = 0  # batches drawn, across epochs (an epoch is steps_per_epoch of them)
        # the steps of the batches drawn and not reported yet, oldest first: one in verl's
        # loop, two in one-step-off-policy's (it draws step g + 1 before step g's update)
        self.unreported: deque[int] = deque()
        self.rounds: dict[int, int] = {}  # batches drawn for each unreported step
        self.refill = False  # record_round was called: the next batch refills its step
        self.records: dict[int, list[Generated]] = {}  # each unreported step's rounds

    def __len__(self) -> int:
        return self.steps_per_epoch * self.batch_size

    def __iter__(self) -> Iterator[int]:
        """The rest of the current epoch's batches (all of them at an epoch's start): each
        the plan of a new step (round 0), or, right after :meth:`record_round`, the plan of
        the next round of the step it recorded."""
        epoch = self.drawn // self.steps_per_epoch
        while self.drawn // self.steps_per_epoch == epoch:
            if self.refill and self.unreported:
                step = self.unreported[-1]
            else:
                step = self.next_step
                self.next_step = step + 1
                self.unreported.append(step)
            round_ = self.rounds.get(step, 0)
            rows = self.draw.global_batch(step, round_)
            if self.draw.names_prompts and not self.tagged:  # before verl reads the rows
                tag_rows(self.dataset)
                self.tagged = True
            self.rounds[step] = round_ + 1
            self.refill = False
            self.drawn += 1
            yield from rows

    def record_round(
        self, batch: DataProto, kept_uids: Iterable[str], algorithm: Any = None
    ) -> None:
        """Record a generation round of dynamic sampling (verl's DAPO recipe): ``batch`` is
        the round's whole batch, every group before the filter (``uid``, ``data_source``,
        ``token_level_scores``; ``token_level_rewards`` and ``response_mask`` when it has
        them), ``kept_uids`` the uids of the groups the filter kept. The next batch drawn is
        then the next round of the same step (the plan of ``(step, batch, round)``), until
        :meth:`update` reports the step: the trained batch with its advantages, the dropped
        groups as ``filtered`` (advantage 0, their real rewards), and the kept groups the
        step did not train (the recipe's surplus past ``train_batch_size``) with the
        advantages verl's estimator gives them. ``algorithm`` is verl's
        ``config.algorithm`` (its ``adv_estimator``, ``gamma``, ``lam``,
        ``norm_adv_by_std_in_grpo``); GRPO's defaults when ``None``."""
        if not self.unreported:
            raise ValueError("record_round: no batch has been drawn since the last update")
        step = self.unreported[-1]
        kept = {str(u) for u in kept_uids}
        tensors, columns = batch.batch, batch.non_tensor_batch
        mask = tensors.get("response_mask", None)
        if mask is None:  # the recipe computes it after the filter; verl's own function
            from verl.trainer.ppo.ray_trainer import compute_response_mask

            mask = compute_response_mask(batch)
        scores = tensors["token_level_scores"]
        token_rewards = tensors.get("token_level_rewards", None)
        token_rewards = scores if token_rewards is None else token_rewards
        sources = [str(s) for s in _column(batch, "data_source").tolist()]
        uids = [str(u) for u in _column(batch, "uid").tolist()]
        rows = self._rows_of(columns.get("extra_info"), len(uids))
        rewards = row_sums(scores, mask)
        keep = [i for i, u in enumerate(uids) if u in kept]
        advantages: list[float | None] = [None] * len(uids)
        if keep:
            estimated = estimator_advantages(
                _estimator(algorithm),
                token_rewards[keep],
                mask[keep],
                [uids[i] for i in keep],
                str(_setting(algorithm, "adv_estimator", "grpo")),
            )
            for i, value in zip(keep, estimated or [None] * len(keep), strict=True):
                advantages[i] = value
        self.records.setdefault(step, []).extend(
            Generated(sources[i], uids[i], rows[i], rewards[i], uids[i] not in kept, advantages[i])
            for i in range(len(uids))
        )
        self.refill = True

    def update(self, batch: DataProto) -> None:
        """Report ``batch``'s samples under the step whose plan drew them: mean
        ``|advantage|`` over the response and reward, grouped by ``data_source`` (and, in a
        run that declares its prompts, each ``uid``'s group), with the step's recorded
        rounds (:meth:`record_round`): its dropped groups and its surplus.

        verl trains the batches in the order it draws them and calls this once for each, so
        ``batch`` is the oldest batch drawn and not reported; nothing is reported when every
        drawn batch has been."""
        if not self.unreported:
            return
        step = self.unreported[0]
        tensors = batch.batch
        sources = [str(s) for s in _column(batch, "data_source").tolist()]
        advantages, rewards = sequence_values(
            tensors["advantages"],
            tensors["response_mask"],
            tensors.get("token_level_scores", None),
        )
        columns = batch.non_tensor_batch
        uids = [str(u) for u in columns.get("uid", np.arange(len(sources)))]
        ledger = StepLedger()
        values = rewards or [None] * len(sources)
        ledger.trained(
            sources, advantages, values, uids, self._rows_of(columns.get("extra_info"), len(uids))
        )
        trained = set(uids)
        for g in self.records.pop(step, []):
            if g.dropped:
                ledger.dropped([g.source], [g.reward], [g.uid], [g.row])
            elif g.uid not in trained:  # kept by the filter, past the trained batch
                ledger.trained([g.source], [g.advantage], [g.reward], [g.uid], [g.row])
        ledger.report(self.client, step, self.draw if self.tagged else None)
        self.unreported.popleft()
        self.rounds.pop(step, None)
        self.refill = False

    def _rows_of(self, infos: Any, count: int) -> list[int | None]:
        """Each response's dataset row, from the ``extra_info`` the sampler tagged (runs
        with prompts); ``None`` each otherwise."""
        if not self.tagged or infos is None:
            return [None] * count
        return [e.get(ROW_KEY) if isinstance(e, dict) else None for e in infos]

    # --- torchdata's Stateful: saved in verl's data.pt -----------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The next step, the batches drawn and the client's checkpoint."""
        return {
            "next_step": self.next_step,
            "drawn": self.drawn,
            "client": self.client.checkpoint(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Go on from :meth:`state_dict`: the service gets the saved state back."""
        self.client.restore(state["client"])
        self.next_step = int(state["next_step"])
        self.drawn = int(state.get("drawn", self.next_step - 1))  # a state saved before rounds
        self.unreported.clear()
        self.rounds.clear()
        self.records.clear()
        self.refill = False


@dataclass(frozen=True)
class Generated:
    """A response of a recorded round: its source, group, row, reward, whether the filter
    dropped its group, and its advantage by verl's estimator (kept groups)."""

    source: str
    uid: str
    row: int | None
    reward: float
    dropped: bool
    advantage: float | None


def _column(batch: DataProto, name: str) -> np.ndarray:
    """A non-tensor column of ``batch``; an error that says where it comes from."""
    if name not in batch.non_tensor_batch:
        where = {
            "data_source": "the train files need verl's data_source column, naming each "
            "row's distribution",
            "uid": "verl gives each prompt its uid before the rollout",
        }[name]
        raise ValueError(f"the batch has no {name!r} field: {where}")
    return batch.non_tensor_batch[name]


def _setting(algorithm: Any, key: str, default: Any) -> Any:
    return default if algorithm is None else algorithm.get(key, default)


def _estimator(algorithm: Any) -> Any:
    """verl's ``compute_advantage`` bound to ``algorithm``'s settings (GRPO's defaults)."""

    def compute(data: DataProto) -> DataProto:
        from verl.trainer.ppo.ray_trainer import compute_advantage  # verl's driver-side code

        return compute_advantage(
            data,
            adv_estimator=_setting(algorithm, "adv_estimator", "grpo"),
            gamma=_setting(algorithm, "gamma", 1.0),
            lam=_setting(algorithm, "lam", 1.0),
            norm_adv_by_std_in_grpo=_setting(algorithm, "norm_adv_by_std_in_grpo", True),
            config=algorithm,
        )

    return compute
