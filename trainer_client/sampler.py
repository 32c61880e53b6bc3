"""A torch batch sampler whose every batch follows the curriculum's plan for its step.

Rows are labelled with their distribution by verl's convention, a ``data_source`` column.
For step ``s`` the sampler asks the client for the plan of ``(s, batch_size)`` and fills
slot ``i`` with a row of distribution ``assignment[i]``, drawn uniformly (without
replacement while the distribution has rows enough) by a generator seeded with
``(seed, s)``: identical on every rank, since the service gives every rank the same plan.
In a run that declares its prompts (``prompts=`` :func:`prompt_counts` of the dataset at
creation), the plan names each slot's prompt as well: slot ``i`` is then the
``prompt_ids[i]``-th row of distribution ``assignment[i]``, in dataset order
(:func:`planned_rows`), and :meth:`CurriculumBatchSampler.prompt_of` turns a row back into
the ``(distribution, prompt)`` a report's ``groups`` name.

Sharding: with ``world_size`` ranks (torch.distributed's, or given), rank ``r`` yields the
slots ``r, r + world_size, r + 2 * world_size, ...`` of the global batch (strided, not a
contiguous block), so the global batch is ``batch_size`` and each rank gets
``batch_size // world_size`` rows; ``batch_size`` must be divisible by ``world_size``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import torch.distributed as dist
from torch.utils.data import Sampler


class Planner(Protocol):
    """Anything that plans a step's batch: a curriculum client, or a local scheduler."""

    def plan(self, step: int, batch_size: int, round: int = 0) -> Any:
        """An object with ``.assignment`` (and, in a run that declares its prompts,
        ``.prompt_ids``), or the list of slot distributions itself. ``round`` is passed only
        for a refill (``round`` > 0), so a planner of steps alone serves round 0."""
        ...


def labels_of(dataset: Any, column: str = "data_source") -> list[str]:
    """Each row's distribution label.

    ``dataset`` is a sequence of labels; a table with the column (a Hugging Face
    ``datasets.Dataset``, a pandas ``DataFrame``, a dict of columns); verl's
    ``RLHFDataset`` (its ``dataframe``); or a sequence of rows that are mappings.
    """
    if isinstance(dataset, Sequence) and all(isinstance(x, str) for x in dataset):
        return list(dataset)
    if hasattr(dataset, "dataframe"):
        return labels_of(dataset.dataframe, column)
    if (
        isinstance(dataset, Mapping)
        or hasattr(dataset, "column_names")
        or hasattr(dataset, "columns")
    ):
        return [str(x) for x in dataset[column]]
    return [str(dataset[i][column]) for i in range(len(dataset))]


def prompt_counts(labels: Sequence[str]) -> dict[str, int]:
    """Each distribution's row count: the prompts a run declares at creation (``prompts=``),
    prompt ``i`` of a distribution being its ``i``-th row in dataset order."""
    return dict(Counter(labels))


def rows_by_label(labels: Sequence[str]) -> dict[str, np.ndarray]:
    """Each distribution's rows, in dataset order (row ``k`` of a distribution is its
    prompt ``k``)."""
    groups: dict[str, list[int]] = {}
    for index, label in enumerate(labels):
        groups.setdefault(label, []).append(index)
    return {name: np.asarray(rows, dtype=np.int64) for name, rows in groups.items()}


def prompt_positions(labels: Sequence[str]) -> np.ndarray:
    """Each row's prompt id: its index among the rows of its distribution, in dataset order
    (the inverse of :func:`planned_rows`)."""
    seen: Counter[str] = Counter()
    out = np.empty(len(labels), dtype=np.int64)
    for index, label in enumerate(labels):
        out[index] = seen[label]
        seen[label] += 1
    return out


def planned_rows(
    rows: Mapping[str, np.ndarray], assignment: Sequence[str], prompt_ids: Sequence[int], step: int
) -> list[int]:
    """The dataset row of each slot of a plan that names its prompts: the
    ``prompt_ids[i]``-th row of distribution ``assignment[i]``, in dataset order."""
    if len(prompt_ids) != len(assignment):
        raise ValueError(
            f"the plan of step {step} has {len(prompt_ids)} prompt ids for {len(assignment)} slots"
        )
    out = []
    for name, prompt in zip(assignment, prompt_ids, strict=True):
        of_name = rows.get(name)
        if of_name is None:
            raise ValueError(
                f"the plan of step {step} asks for distribution {name!r}, but no row of the "
                f"dataset has it; labels present: {sorted(rows)[:10]}"
            )
        if not 0 <= prompt < of_name.size:
            raise ValueError(
                f"the plan of step {step} asks for prompt {prompt} of {name!r}, which has "
                f"{of_name.size} rows: the run declares other prompt counts than this "
                "dataset's (prompts= at creation must be prompt_counts of the same rows)"
            )
        out.append(int(of_name[prompt]))
    return out


class CurriculumBatchSampler(Sampler[list[int]]):
    """Yields, for steps ``start_step`` to ``start_step + num_steps - 1``, this rank's rows.

    Use it as a ``DataLoader``'s ``batch_sampler``. ``rank``/``world_size`` default to
    torch.distributed's when it is initialised, else to 0/1. :meth:`set_step` moves the
    first step of the next iteration (resume from a checkpoint).
    """

    def __init__(
        self,
        dataset: Any,
        client: Planner,
        batch_size: int,
        *,
        num_steps: int,
        start_step: int = 0,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        column: str = "data_source",
    ) -> None:
        distributed = dist.is_available() and dist.is_initialized()
        self.rank = rank if rank is not None else (dist.get_rank() if distributed else 0)
        self.world_size = (
            world_size if world_size is not None else (dist.get_world_size() if distributed else 1)
        )
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"need 0 <= rank < world_size, got {self.rank}, {self.world_size}")
        if batch_size < 1 or batch_size % self.world_size:
            raise ValueError(
                f"batch_size ({batch_size}) must be a positive multiple of world_size "
                f"({self.world_size})"
            )
        if num_steps < 0 or start_step < 0:
            raise ValueError("num_steps and start_step must be >= 0")
        self.client = client
        self.batch_size = batch_size
        self.start_step = start_step
        self.end_step = start_step + num_steps
        self.seed = seed
        self._step = start_step
        labels = labels_of(dataset, column)
        self._rows = rows_by_label(labels)
        self._labels = labels
        self._prompts = prompt_positions(labels)
        # whether the last plan drawn named each slot's prompt (a run's plans all do, or none)
        self.names_prompts = False

    def set_step(self, step: int) -> None:
        """Make the next iteration start at ``step`` (e.g. the step a checkpoint resumes at)."""
        if not self.start_step <= step <= self.end_step:
            raise ValueError(f"step {step} is outside [{self.start_step}, {self.end_step}]")
        self._step = step

    def __len__(self) -> int:
        return self.end_step - self._step

    def prompt_of(self, row: int) -> tuple[str, int]:
        """Row ``row``'s distribution and prompt id (its index among that distribution's rows),
        as a report's ``groups`` name it."""
        return self._labels[row], int(self._prompts[row])

    def global_batch(self, step: int, round: int = 0) -> list[int]:
        """The dataset indices of all ``batch_size`` slots of the step, in slot order: the
        rows the plan's ``prompt_ids`` name when it has them, else drawn.

        ``round`` > 0 is a refill of the step (a filter dropped groups): the plan of
        ``(step, batch_size, round)``, its rows drawn by a generator seeded with
        ``(seed, step, round)``; round 0 is the step's batch."""
        if round:
            plan = self.client.plan(step, self.batch_size, round)
        else:
            plan = self.client.plan(step, self.batch_size)
        assignment = list(getattr(plan, "assignment", plan))
        prompt_ids = getattr(plan, "prompt_ids", None)
        self.names_prompts = prompt_ids is not None
        if prompt_ids is not None:
            return planned_rows(self._rows, assignment, prompt_ids, step)
        rng = np.random.default_rng([self.seed, step, round] if round else [self.seed, step])
        slots = np.empty(len(assignment), dtype=np.int64)
        by_name: dict[str, list[int]] = {}
        for slot, name in enumerate(assignment):
            by_name.setdefault(name, []).append(slot)
        for name in sorted(by_name):
            rows = self._rows.get(name)
            if rows is None:
                raise ValueError(
                    f"the plan of step {step} asks for distribution {name!r}, but no row of "
                    f"the dataset has it; labels present: {sorted(self._rows)[:10]}"
                )
            wanted = len(by_name[name])
            picks = rng.choice(rows, size=wanted, replace=wanted > rows.size)
            slots[by_name[name]] = picks
        return [int(i) for i in slots]

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self._step, self.end_step):
            yield self.global_batch(step)[self.rank :: self.world_size]
