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
  dataloader's state) holds the next step and the client's checkpoint, and resuming
  restores both, so the resumed run goes on with the plan of the step after the
  checkpoint's. verl saves before it calls ``update``, so the checkpoint of step ``g``
  holds the scheduler as of step ``g - 1``'s report; the resumed run does not report step
  ``g`` again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sized
from typing import Any

from trainer_client.integrations.verl.versions import unsupported

try:
    from verl import DataProto
    from verl.experimental.dataset.sampler import AbstractCurriculumSampler
except ModuleNotFoundError as error:  # verl 0.8+: no data.sampler hook
    raise unsupported("sampler", error) from error

from trainer_client.client import CurriculumClient
from trainer_client.integrations.verl.settings import connect, resolve
from trainer_client.integrations.verl.steps import (
    prompt_groups,
    report_step,
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
        self.next_step = 1  # verl's global_steps of the next batch drawn
        # the steps of the batches drawn and not reported yet, oldest first: one in verl's
        # loop, two in one-step-off-policy's (it draws step g + 1 before step g's update)
        self.unreported: deque[int] = deque()

    def __len__(self) -> int:
        return self.steps_per_epoch * self.batch_size

    def __iter__(self) -> Iterator[int]:
        """The rest of the current epoch's steps (all of them at an epoch's start)."""
        epoch = (self.next_step - 1) // self.steps_per_epoch
        while (self.next_step - 1) // self.steps_per_epoch == epoch:
            step = self.next_step
            rows = self.draw.global_batch(step)
            if self.draw.names_prompts and not self.tagged:  # before verl reads the rows
                tag_rows(self.dataset)
                self.tagged = True
            self.unreported.append(step)
            self.next_step = step + 1
            yield from rows

    def update(self, batch: DataProto) -> None:
        """Report ``batch``'s samples under the step whose plan drew them: mean
        ``|advantage|`` over the response and reward, grouped by ``data_source`` (and, in a
        run that declares its prompts, each ``uid``'s group).

        verl trains the batches in the order it draws them and calls this once for each, so
        ``batch`` is the oldest batch drawn and not reported; nothing is reported when every
        drawn batch has been."""
        if not self.unreported:
            return
        step = self.unreported[0]
        tensors = batch.batch
        if "data_source" not in batch.non_tensor_batch:
            raise ValueError(
                "the batch has no 'data_source' field: the train files need verl's "
                "data_source column, naming each row's distribution"
            )
        sources = batch.non_tensor_batch["data_source"].tolist()
        advantages, rewards = sequence_values(
            tensors["advantages"],
            tensors["response_mask"],
            tensors.get("token_level_scores", None),
        )
        groups = None
        infos, uids = batch.non_tensor_batch.get("extra_info"), batch.non_tensor_batch.get("uid")
        if self.tagged and rewards is not None and infos is not None and uids is not None:
            rows = [e.get(ROW_KEY) if isinstance(e, dict) else None for e in infos]
            groups = prompt_groups(self.draw, uids, rows, rewards)
        report_step(self.client, step, sources, advantages, rewards, groups)
        self.unreported.popleft()

    # --- torchdata's Stateful: saved in verl's data.pt -----------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The next step and the client's checkpoint."""
        return {"next_step": self.next_step, "client": self.client.checkpoint()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Go on from :meth:`state_dict`: the service gets the saved state back."""
        self.client.restore(state["client"])
        self.next_step = int(state["next_step"])
        self.unreported.clear()
