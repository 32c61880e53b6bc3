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
  distribution, seeded by the run's seed and the step). An epoch is ``len(dataset) //
  batch`` steps, as verl counts it.
- **Reports.** ``update(batch)`` reports the batch's samples once, as
  ``{run}/step-{step}/rank-0``, ``step`` the step whose plan drew them: each sequence's
  mean ``|advantage|`` over its ``response_mask``, and its reward (``token_level_scores``
  summed), grouped by the ``data_source`` of its row. verl calls it on the one controller
  process with the whole batch, so one report a step carries every sample. verl 0.7's
  one-step-off-policy recipe draws step ``g + 1``'s batch before step ``g``'s update: the
  sampler keeps the steps drawn and not reported, in order, and reports the oldest, so
  that update is still step ``g``'s. (verl's rows are built by its dataset, which the
  sampler, yielding indices only, cannot tag; the order is verl's contract: each batch
  drawn is trained and handed to ``update`` once, in the order drawn.)
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
from trainer_client.integrations.verl.steps import report_step, sequence_values, step_draw
from trainer_client.sampler import labels_of


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
            self.unreported.append(step)
            self.next_step = step + 1
            yield from rows

    def update(self, batch: DataProto) -> None:
        """Report ``batch``'s samples under the step whose plan drew them: mean
        ``|advantage|`` over the response and reward, grouped by ``data_source``.

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
        report_step(self.client, step, sources, advantages, rewards)
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
