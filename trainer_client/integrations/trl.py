"""TRL: ``CurriculumGRPOTrainer``, a ``trl.GRPOTrainer`` whose batches follow the curriculum.

::

    trainer = CurriculumGRPOTrainer(
        model=..., reward_funcs=..., args=GRPOConfig(output_dir="runs/my-run", ...),
        train_dataset=dataset,
        curriculum=CurriculumRun("http://localhost:8000", run_id="my-run"),
    )
    trainer.train()

The only new argument is ``curriculum``; every other one is ``GRPOTrainer``'s. The train
dataset is map-style with a ``data_source`` column naming each row's distribution.

How it fits TRL's contracts:

- **The run, kept in ``output_dir``.** With a :class:`CurriculumRun`, the trainer creates the
  scheduling run or attaches to it. Its id and bearer token go to
  ``output_dir/_curriculum/scheduler-run.json`` (readable by its owner only, as the bundled
  trainer keeps them: :mod:`trainer_client.run_files`) as soon as the run is known, so a
  restart or a resume in a new process attaches to the same run by itself, with the saved
  token. What an outage leaves owed is kept beside it in ``scheduler-buffer.jsonl`` (other
  processes: ``scheduler-buffer-rank-{k}.jsonl``) and replayed by the next start. The main
  process creates or attaches, the others attach with the id and token it hands them. The
  folder's leading underscore keeps it out of what ``push_to_hub`` uploads (TRL uploads
  ``output_dir`` but ``_*``). A ``CurriculumClient`` may be given instead (its run is
  recorded in the same file).
- **Sampling.** TRL draws one *generation round* at a time: ``generation_batch_size /
  num_generations`` prompts, each repeated ``num_generations`` times in a row, the round
  repeated ``num_iterations x steps_per_generation`` times (``RepeatSampler``). The
  curriculum sampler keeps that shape; round ``k``'s prompts follow the service's plan of
  step ``k`` exactly (one prompt per slot, drawn uniformly within its distribution with a
  generator seeded by the run's seed and ``k``, or the one the plan names: below). Every
  process asks for the same plan and draws the same prompts, and accelerate gives each its
  share, as with TRL's sampler. The data loader reads ahead: asking for round ``k + 1``'s
  plan never waits for round ``k``'s report (the plan is the service's weights at the time,
  fixed for every process).
- **Prompt selection** (``CurriculumRun(..., prompt_selection=True)``). The run is created
  with the train dataset's prompts, each ``data_source``'s row count (prompt ``i`` of a
  distribution is its ``i``-th row, in dataset order), and its plans name each slot's
  prompt: slot ``i`` is then the ``prompt_ids[i]``-th row of ``assignment[i]``, not a row
  drawn at random. Rows reach the reward functions with ``curriculum_prompt``, that id.
- **Off the step's path.** The client's calls run on one worker thread, in order: a report
  is handed over and the step goes on, and the plan of the next round is asked for right
  after it, so the sampler usually finds it waiting. ``train()`` returns once every report
  reached the client; an error of a report is raised by the next one.
- **Reporting.** After ``_generate_and_score_completions`` in training, each process reports
  its slice's advantages and rewards, grouped by ``data_source``, once per round, under the
  id ``{run}/round-{k}/rank-{process}``: a retry or a round generated again after a resume
  is a duplicate, never counted twice. Evaluation reports nothing. The round travels with
  the rows (the sampler's indices carry it), so read-ahead and skipped batches cannot mix
  rounds up. When the round's plan named its prompts, the reports also carry ``groups``:
  each of the round's prompts with the rewards of all its completions. TRL gathers every
  process's rewards (in process order) before computing advantages, and its groups are
  ``num_generations`` consecutive rows of that order, so a group may span two processes;
  each group is reported by the process that holds its first row, with all its rewards
  taken from the gathered tensor, so every group is reported once and whole.
- **Checkpoints.** ``curriculum.json`` in each checkpoint folder holds the client's
  checkpoint (the service's snapshot, or during an outage the local state and the reports
  still owed) and the plans of the last rounds, with their prompt ids;
  ``resume_from_checkpoint`` restores it (the main process imports it into the service) and
  the rounds that the resumed run skips are neither re-planned nor asked for, so no expired
  plan is requested.

Outages: the client plans locally and buffers reports (see :mod:`trainer_client.client`);
during an outage the processes each plan from their own copy, so they draw the same prompts
only while their copies agree.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence, Sized
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate.utils import broadcast_object_list
from torch.utils.data import Dataset, IterableDataset, Sampler
from trl import GRPOTrainer

from trainer_client.client import CurriculumClient
from trainer_client.grpo.scheduler import StepPlan, step_plan
from trainer_client.integrations.reporting import round_report
from trainer_client.run_files import (
    RunRecord,
    buffer_path,
    buffered_run_id,
    pending_calls,
    read_run,
    write_run,
)
from trainer_client.sampler import planned_rows, prompt_counts, prompt_positions, rows_by_label

CHECKPOINT_FILE = "curriculum.json"
# in output_dir: the run's id, token and what is owed (a leading "_" keeps it off the Hub)
RUN_FOLDER = "_curriculum"
PLAN_MEMORY = 8  # rounds whose plan a checkpoint keeps (the resumed run's skipped rounds)


def _sources_of(dataset: Any) -> list[str]:
    """The ``data_source`` of every row; a clear error for a dataset that has none."""
    if isinstance(dataset, IterableDataset) or not hasattr(dataset, "__getitem__"):
        raise TypeError(
            "CurriculumGRPOTrainer needs a map-style train dataset (datasets.Dataset or any "
            "indexable one): each round's prompts are picked by index from the plan; got "
            f"{type(dataset).__name__}"
        )
    columns = getattr(dataset, "column_names", None)
    if columns is not None:
        if "data_source" not in columns:
            raise ValueError(
                "the train dataset needs a 'data_source' column naming each row's "
                f"distribution; it has {columns}"
            )
        return [str(s) for s in dataset["data_source"]]
    return [str(dataset[i]["data_source"]) for i in range(len(dataset))]


@dataclass(frozen=True)
class CurriculumRun:
    """The scheduling run a :class:`CurriculumGRPOTrainer` creates, or attaches to.

    ``url`` is the service's (or replicas', see :class:`~trainer_client.CurriculumClient`).
    ``run_id``: the run (default: the one recorded in ``output_dir``, else a new id).
    ``token``: the run's token when it exists already and ``output_dir`` does not hold it (a
    run created elsewhere); a run the trainer created needs none, its token is kept in
    ``output_dir``. ``strategy`` and ``seed`` configure a new run (the service's default
    strategy when absent); ``distributions`` default to the train dataset's ``data_source``
    values, sorted. ``client_options`` go to the client (``timeout``, ``retries``, ...).

    ``prompt_selection``: ``True`` (or the run's prompt selection parameters, e.g.
    ``{"mode": "coverage"}``, docs/api.md) declares the train dataset's prompts to a new run,
    each distribution's row count (prompt ``i`` of a distribution is its ``i``-th row, in
    dataset order), so that the service picks each slot's prompt: every prompt once a pass,
    prompts predicted to teach nothing passed over. The run is then told each group's prompt
    and rewards. A run that exists already keeps its configuration (a different one is a
    :class:`~trainer_client.errors.RunConflict`).
    """

    url: str | Sequence[str]
    run_id: str | None = None
    token: str | None = None
    strategy: str | Mapping[str, Any] | None = None
    seed: int = 0
    distributions: Sequence[str] | None = None
    client_options: Mapping[str, Any] | None = None
    prompt_selection: bool | Mapping[str, Any] = False


def _run_buffer(folder: str, process: int) -> Path:
    """Where a process keeps what it owes the service: the main process's file is the one
    ``python -m trainer_client replay`` reads."""
    main = buffer_path(folder)
    return main if process == 0 else main.with_name(f"scheduler-buffer-rank-{process}.jsonl")


def _attach(run: CurriculumRun, folder: str, sources: list[str], process: int) -> CurriculumClient:
    """The main process's client: the run recorded in ``folder`` unless another is named,
    with its saved token unless one is given; created when it does not exist yet."""
    recorded = read_run(folder)
    run_id, token = run.run_id, run.token
    if recorded is not None and run_id in (None, recorded.run_id):
        run_id, token = recorded.run_id, token or recorded.token
    owed_to = buffered_run_id(folder)
    if owed_to is not None and run_id is not None and owed_to != run_id:
        raise ValueError(
            f"{buffer_path(folder)} holds {pending_calls(folder)} call(s) owed to scheduling "
            f"run {owed_to!r}, not {run_id!r}: replay them first (`python -m trainer_client "
            f"replay {folder}`), or use another output_dir"
        )
    names = list(run.distributions) if run.distributions is not None else sorted(set(sources))
    options = dict(run.client_options or {})
    if run.prompt_selection:
        counts = prompt_counts(sources)
        empty = [name for name in names if name not in counts]
        if empty:
            raise ValueError(
                f"prompt_selection declares each distribution's rows, but no row of the train "
                f"dataset has data_source {empty}"
            )
        options["prompts"] = {name: counts[name] for name in names}
        if isinstance(run.prompt_selection, Mapping):
            options["prompt_selection"] = dict(run.prompt_selection)
    return CurriculumClient.create_or_attach(
        run.url,
        names,
        run_id=run_id,
        token=token,
        strategy=run.strategy,
        seed=run.seed,
        rank=process,
        buffer_path=_run_buffer(folder, process),
        **options,
    )


class RoundTagged(Dataset):
    """The train dataset seen through the curriculum sampler's indices: index ``k * N + i``
    is row ``i`` of round ``k`` (``N`` rows), returned with ``curriculum_round = k`` and
    ``curriculum_prompt``, the row's prompt id (its index among the rows of its
    ``data_source``, ``prompts[i]``)."""

    def __init__(self, base: Any, prompts: np.ndarray) -> None:
        self.base = base
        self.rows = len(base)
        self.prompts = prompts

    def __len__(self) -> int:
        return self.rows

    def __getitem__(self, index: int) -> dict[str, Any]:
        round_, row = divmod(int(index), self.rows)
        return {
            **self.base[row],
            "curriculum_round": round_,
            "curriculum_prompt": int(self.prompts[row]),
        }


class CurriculumSampler(Sampler[int]):
    """``RepeatSampler``'s shape with the prompts of each round chosen by the round's plan.

    ``fetch(round, prompts)`` gives a round's plan (its distribution per slot and, in a run
    that declares its prompts, ``prompt_ids``). ``prompts`` prompts a round
    (``generation_batch_size / num_generations``), each
    index repeated ``mini_repeat`` times in a row, the round ``repeat`` times. Rounds are
    numbered across epochs (``set_epoch``); rounds below ``skip_below`` (a resumed run's, whose
    batches the trainer skips) are emitted without asking for a plan, unless their plan is
    remembered in ``plans``.
    """

    def __init__(
        self,
        sources: list[str],
        fetch: Callable[[int, int], StepPlan],
        prompts: int,
        mini_repeat: int,
        repeat: int,
        seed: int,
    ) -> None:
        self.fetch = fetch
        self.prompts, self.mini_repeat, self.repeat, self.seed = prompts, mini_repeat, repeat, seed
        self.rows = len(sources)
        self.rounds_per_epoch = self.rows // prompts
        if self.rounds_per_epoch < 1:
            raise ValueError(
                f"the train dataset has {self.rows} rows, fewer than one round's {prompts} "
                "prompts (generation_batch_size / num_generations)"
            )
        self.by_source = rows_by_label(sources)
        self.epoch = 0
        self.skip_below = 0
        self.plans: OrderedDict[int, StepPlan] = OrderedDict()

    def set_epoch(self, epoch: int) -> None:
        """The trainer's epoch: rounds are numbered ``epoch * rounds_per_epoch + i``."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.rounds_per_epoch * self.prompts * self.mini_repeat * self.repeat

    def plan(self, round_: int) -> StepPlan:
        """Round ``round_``'s plan: remembered, else the service's."""
        known = self.plans.get(round_)
        if known is None:
            known = self.fetch(round_, self.prompts)
            self.plans[round_] = known
            while len(self.plans) > PLAN_MEMORY:
                self.plans.popitem(last=False)
        return known

    def rows_of(self, round_: int) -> list[int]:
        """The row of each slot of round ``round_``: the ``prompt_ids[i]``-th row of its
        distribution when the plan names the prompts, else uniform within it."""
        assignment = self.plan(round_)
        if assignment.prompt_ids is not None:
            return planned_rows(self.by_source, assignment, assignment.prompt_ids, round_)
        rng = np.random.default_rng([self.seed, round_])
        out = []
        for name in assignment:
            rows = self.by_source.get(name)
            if rows is None:
                raise ValueError(
                    f"the plan of round {round_} asks for distribution {name!r}, which no row "
                    f"of the train dataset has; its data_source values: {sorted(self.by_source)}"
                )
            out.append(int(rows[rng.integers(rows.size)]))
        return out

    def __iter__(self) -> Iterator[int]:
        for i in range(self.rounds_per_epoch):
            round_ = self.epoch * self.rounds_per_epoch + i
            if round_ < self.skip_below and round_ not in self.plans:
                rows = [0] * self.prompts  # skipped by the trainer: never generated
            else:
                rows = self.rows_of(round_)
            offset = round_ * self.rows
            for _ in range(self.repeat):
                for row in rows:
                    for _ in range(self.mini_repeat):
                        yield offset + row


class CurriculumGRPOTrainer(GRPOTrainer):
    """``trl.GRPOTrainer`` with its prompts chosen by the curriculum service; see the module
    doc. ``curriculum`` is the run: a :class:`CurriculumRun` (the trainer makes each
    process's client, ``self.curriculum``), or this process's
    :class:`~trainer_client.CurriculumClient`. Every other argument is ``GRPOTrainer``'s."""

    def __init__(
        self, *args: Any, curriculum: CurriculumRun | CurriculumClient, **kwargs: Any
    ) -> None:
        self._curriculum_sampler: CurriculumSampler | None = None
        self._round_rewards: torch.Tensor | None = None
        # Every call of the client runs on this one thread, in order (the client is for one
        # thread): reports leave the training step, and the next plan is asked for right
        # after a report, so the sampler usually finds it waiting.
        self._calls = ThreadPoolExecutor(1, "curriculum")
        self._pending: list[Future[Any]] = []
        self._prefetched: dict[tuple[int, int], Future[Any]] = {}
        self._next_round = 0
        super().__init__(*args, **kwargs)
        self._sources = _sources_of(self.train_dataset)
        if isinstance(curriculum, CurriculumRun):
            self.curriculum = self._client_of(curriculum)
            self._given_token = curriculum.token
        else:
            self.curriculum, self._given_token = curriculum, None
        self._record_run()

    def _client_of(self, run: CurriculumRun) -> CurriculumClient:
        """This process's client: the main process creates or attaches, then hands the run's
        id and token to the others, which attach with them."""
        folder, process = self._run_folder(), self.accelerator.process_index
        main = _attach(run, folder, self._sources, process) if process == 0 else None
        if self.accelerator.num_processes == 1:
            assert main is not None
            return main
        shared = [(main.run_id, main.token) if main is not None else None]
        broadcast_object_list(shared, from_process=0)
        if main is not None:
            return main
        run_id, token = shared[0]
        return CurriculumClient(
            run.url,
            run_id,
            token,
            rank=process,
            buffer_path=_run_buffer(folder, process),
            **dict(run.client_options or {}),
        )

    def _run_folder(self) -> str:
        return os.path.join(self.args.output_dir, RUN_FOLDER)

    def _record_run(self) -> None:
        """Keep the run's id and own token in ``output_dir`` (main process; a token first
        known once the service answered is written by the next call)."""
        if not self.accelerator.is_main_process:
            return
        client = self.curriculum
        # the run's own token, not one the caller gave (an operator's, say), as the bundled
        # trainer records it
        token = client.token if client.token != self._given_token else None
        record = RunRecord(client.run_id, token, ",".join(client.base_urls))
        if read_run(self._run_folder()) != record:
            write_run(self._run_folder(), record)

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a client call on the worker after every call before it; its result."""
        self._settle()
        return self._calls.submit(fn, *args, **kwargs).result()

    def _settle(self) -> None:
        """Wait for the reports in flight; an error of one is raised here."""
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def _fetch_plan(self, round_: int, prompts: int) -> StepPlan:
        future = self._prefetched.pop((round_, prompts), None)
        if future is None:
            future = self._calls.submit(self.curriculum.plan, round_, prompts)
        self._next_round = max(self._next_round, round_ + 1)
        return step_plan(future.result())

    def train(self, *args: Any, **kwargs: Any) -> Any:
        """``GRPOTrainer.train``; returns once every report of the run reached the client."""
        try:
            return super().train(*args, **kwargs)
        finally:
            try:
                self._settle()
            finally:
                for future in self._prefetched.values():
                    future.cancel()
                self._prefetched.clear()
                self._record_run()

    # --- sampling -------------------------------------------------------------------------

    def get_train_dataloader(self) -> Any:
        # the loader reads rows through RoundTagged, so each row says which round it is of
        original = self.train_dataset
        self.train_dataset = RoundTagged(original, prompt_positions(self._sources))
        try:
            return super().get_train_dataloader()
        finally:
            self.train_dataset = original

    def _get_train_sampler(self, dataset: Sized | None = None) -> Sampler[int]:
        sampler = CurriculumSampler(
            self._sources,
            self._fetch_plan,
            prompts=self.args.generation_batch_size // self.num_generations,
            mini_repeat=self.num_generations,
            repeat=self.num_iterations * self.args.steps_per_generation,
            seed=self.args.seed,
        )
        if self._curriculum_sampler is not None:  # a new loader (resume): keep what is known
            sampler.skip_below = self._curriculum_sampler.skip_below
            sampler.plans = self._curriculum_sampler.plans
        self._curriculum_sampler = sampler
        return sampler

    # --- reporting ------------------------------------------------------------------------

    def _calculate_rewards(self, inputs: Any, *args: Any, **kwargs: Any) -> torch.Tensor:
        rewards_per_func = super()._calculate_rewards(inputs, *args, **kwargs)
        weights = self.reward_weights.to(rewards_per_func.device).unsqueeze(0)
        self._round_rewards = (rewards_per_func * weights).nansum(dim=1)  # every process's
        return rewards_per_func

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        output = super()._generate_and_score_completions(inputs)
        if self.model.training and inputs and "curriculum_round" in inputs[0]:
            self._report_round(inputs, output)
        return output

    def _report_round(self, inputs: list[dict[str, Any]], output: dict[str, Any]) -> None:
        """Report this process's slice of the round, grouped by ``data_source``."""
        n = len(inputs)
        process = self.accelerator.process_index
        advantages = output["advantages"].detach().float().cpu()
        if advantages.dim() > 1:  # token-level advantages: their mean over the response
            mask = output["completion_mask"].detach().float().cpu()
            advantages = (advantages * mask).sum(1) / mask.sum(1).clamp(min=1)
        rewards: list[float] | None = None
        if self._round_rewards is not None:
            rewards = self._round_rewards[process * n : (process + 1) * n].tolist()
        # plain lists, not tensor elements: this runs on the step's path
        sources = [row["data_source"] for row in inputs]
        by_adv, by_rew = round_report(sources, advantages.tolist(), rewards)
        round_ = int(inputs[0]["curriculum_round"])
        sampler = self._curriculum_sampler
        plan = sampler.plans.get(round_) if sampler is not None else None
        groups = None
        if plan is not None and plan.prompt_ids is not None:
            groups = self._round_groups(inputs)
        done = [f for f in self._pending if f.done()]
        for future in done:  # an error of an earlier report surfaces here
            future.result()
            self._pending.remove(future)
        self._pending.append(
            self._calls.submit(
                self.curriculum.report,
                round_,
                by_adv,
                by_rew,
                report_id=f"{self.curriculum.run_id}/round-{round_}/rank-{process}",
                with_weights=False,
                groups=groups or None,
            )
        )
        self._curriculum_reported = round_ + 1
        key = (self._next_round, sampler.prompts if sampler else 0)
        if sampler is not None and key not in self._prefetched:
            self._prefetched[key] = self._calls.submit(self.curriculum.plan, *key)

    def _round_groups(self, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The round's groups that start in this process's slice, each with the rewards of
        all its completions.

        TRL gathers the round's rewards from every process, in process order (process
        ``p``'s ``n`` rows at ``p * n``), and its groups are ``num_generations`` consecutive
        rows of that order (its advantages are the rewards ``view(-1, num_generations)``),
        so a group may span processes. Each group is reported by the process holding its
        first row, with its rewards from the gathered tensor: once across the processes,
        and whole."""
        size, n = self.num_generations, len(inputs)
        start = self.accelerator.process_index * n
        if self._round_rewards is None:
            return []
        gathered = self._round_rewards.tolist()
        groups = []
        for j in range(-start % size, n, size):  # the local rows where a group starts
            row = inputs[j]
            prompt = (row["data_source"], int(row["curriculum_prompt"]))
            tail = inputs[j : j + size]  # this group's rows in this slice, all of one prompt
            if any((r["data_source"], int(r["curriculum_prompt"])) != prompt for r in tail):
                raise RuntimeError(
                    f"round {row['curriculum_round']}: rows {start + j}.. of the generation "
                    f"batch do not hold one prompt's {size} completions in a row"
                )
            rewards = gathered[start + j : start + j + size]
            groups.append({"distribution": str(prompt[0]), "prompt": prompt[1], "rewards": rewards})
        return groups

    # --- checkpoints ----------------------------------------------------------------------

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        super()._save_checkpoint(model, trial)
        if not self.args.should_save:
            return
        folder = os.path.join(
            self._get_output_dir(trial=trial), f"checkpoint-{self.state.global_step}"
        )
        sampler = self._curriculum_sampler
        plans = sampler.plans if sampler is not None else OrderedDict()
        state = {
            "client": self._call(self.curriculum.checkpoint),
            "rounds_reported": getattr(self, "_curriculum_reported", 0),
            "plans": {str(k): list(v) for k, v in plans.items()},
            "prompt_ids": {str(k): v.prompt_ids for k, v in plans.items() if v.prompt_ids},
        }
        with open(os.path.join(folder, CHECKPOINT_FILE), "w", encoding="utf-8") as f:
            json.dump(state, f)
        self._record_run()

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is None:
            return
        path = os.path.join(checkpoint, CHECKPOINT_FILE)
        if not os.path.exists(path):
            return
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
        if self.accelerator.is_main_process:
            self._call(self.curriculum.restore, state["client"])
        self.accelerator.wait_for_everyone()  # the import lands before any process reports
        self._curriculum_reported = int(state["rounds_reported"])
        plans = [int(k) + 1 for k in state["plans"]]
        self._next_round = max([self._curriculum_reported, *plans])  # never a skipped round
        sampler = self._curriculum_sampler
        if sampler is not None:
            sampler.skip_below = self._curriculum_reported
            prompt_ids = state.get("prompt_ids", {})
            sampler.plans = OrderedDict(
                (int(k), StepPlan(v, prompt_ids.get(k))) for k, v in state["plans"].items()
            )
