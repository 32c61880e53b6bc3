"""How the trainer talks to a curriculum scheduler: a protocol and two implementations.

``LocalScheduler`` runs the scheduling core in-process (tests, offline runs);
``ServiceScheduler`` adapts the HTTP ``CurriculumClient`` of ``trainer_client.client``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

from curriculum_core import DEFAULT_STRATEGY, ReportError, RunModel
from trainer_client.protocol import Groups, with_filtered

PromptGroups = Sequence[Mapping[str, Any]]
"""Each generated group's ``{"distribution", "prompt", "rewards"}`` (docs/api.md)."""


class StepPlan(list[str]):
    """One generation round's plan: the distribution name of each slot, as a list (so it
    serves wherever a plan was a plain list), and ``prompt_ids``: in a run that declares its
    prompts, the prompt of each slot (an index into its distribution's train rows, in the
    order the task builds them), else ``None``. Equality compares the names only."""

    def __init__(self, assignment: Iterable[str] = (), prompt_ids: Iterable[int] | None = None):
        super().__init__(assignment)
        self.prompt_ids = None if prompt_ids is None else [int(i) for i in prompt_ids]
        if self.prompt_ids is not None and len(self.prompt_ids) != len(self):
            raise ValueError(f"{len(self.prompt_ids)} prompt ids for {len(self)} slots")

    @property
    def assignment(self) -> list[str]:
        """The distribution of each slot, as a plain list."""
        return list(self)


def step_plan(plan: Any) -> StepPlan:
    """A client's plan (an object with ``.assignment`` and maybe ``.prompt_ids``) as a
    :class:`StepPlan`."""
    return StepPlan(plan.assignment, getattr(plan, "prompt_ids", None))


class Scheduler(Protocol):
    """What the GRPO trainer needs from a curriculum scheduler."""

    def plan(self, step: int, batch_size: int, round: int = 0) -> StepPlan:
        """The distribution name of each of the step's ``batch_size`` prompt slots, in
        generation round ``round`` of the step (0: its batch; 1, 2, ...: refills), and in a
        run that declares its prompts each slot's prompt id. A scheduler may return a plain
        list of names: the trainer then draws each slot's prompt itself."""
        ...

    def report(
        self,
        step: int,
        advantages: dict[str, list[float]],
        rewards: dict[str, list[float]] | None = None,
        filtered: Groups | None = None,
        groups: PromptGroups | None = None,
    ) -> None:
        """Per distribution, the step's per-sample advantages (signed) and rewards, and the
        rewards of each group a filter dropped (reported with zero advantages); in a run
        that declares its prompts, ``groups``: every generated group's prompt and rewards
        (passed only when the plans named prompts)."""
        ...

    def weights(self) -> dict[str, float]:
        """The current sampling probability of each distribution."""
        ...

    def export(self) -> dict:
        """A snapshot of the scheduler's state, saved in checkpoints; never needs the
        service to be reachable."""
        ...

    def import_(self, snapshot: dict) -> None:
        """Restore a snapshot made by :meth:`export`."""
        ...


class LocalScheduler:
    """The scheduling core run in-process (``curriculum_core.RunModel``): the service's
    statistics, weights and plans, with no service.

    ``strategy`` is any strategy name and ``params`` its parameters. ``prompts`` (each
    distribution's train row count) makes plans name each slot's prompt, selected as
    ``prompt_selection`` says (docs/strategies.md, "Prompt selection"). Each step's report
    gets the id ``local/step-{step}``, so a step reported twice counts once, as on the
    service. Snapshots are in the service's export format, so a run can move from one to the
    other.
    """

    def __init__(
        self,
        distributions: list[str],
        strategy: str = DEFAULT_STRATEGY,
        seed: int = 0,
        *,
        prompts: Mapping[str, int] | None = None,
        prompt_selection: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> None:
        self.model = RunModel(
            distributions,
            {"name": strategy, **params},
            seed,
            prompts=prompts,
            prompt_selection=prompt_selection,
        )

    @property
    def names(self) -> list[str]:
        """The distributions, in the run's order."""
        return self.model.names

    @property
    def strategy(self) -> Any:
        """The strategy with its constants."""
        return self.model.strategy

    @property
    def seed(self) -> int:
        """The seed of every step's plan."""
        return self.model.seed

    def plan(self, step: int, batch_size: int, round: int = 0) -> StepPlan:
        """One distribution per slot, drawn from the current weights, and each slot's
        prompt when the run declares prompts (the first call for a round fixes it)."""
        return step_plan(self.model.plan_step(step, batch_size, round))

    def report(
        self,
        step: int,
        advantages: dict[str, list[float]],
        rewards: dict[str, list[float]] | None = None,
        filtered: Groups | None = None,
        groups: PromptGroups | None = None,
    ) -> None:
        """Apply the step's report; raises ``ValueError`` for what the service would refuse."""
        advantages, rewards = with_filtered(advantages, rewards, filtered)
        try:
            adv, rew = self.model.validate(advantages, rewards)
            checked = self.model.validate_groups(groups) if groups else []
        except ReportError as exc:
            raise ValueError(str(exc)) from None
        self.model.apply(f"local/step-{step}", adv, rew, checked)

    def weights(self) -> dict[str, float]:
        """Sampling probability per distribution, summing to 1."""
        return self.model.named_weights()

    def export(self) -> dict:
        """The run's state in the service's snapshot format."""
        return self.model.snapshot()

    def import_(self, snapshot: dict) -> None:
        """Replace this scheduler's configuration and state with ``snapshot``'s; the
        distributions must match."""
        model = RunModel.from_snapshot(snapshot)
        if model.names != self.model.names:
            raise ValueError(f"snapshot distributions {model.names} differ from {self.model.names}")
        self.model = model


class ServiceScheduler:
    """Adapts a ``trainer_client.client.CurriculumClient`` (or anything shaped like it) to
    :class:`Scheduler`: its ``plan`` returns an object whose ``.assignment`` is the list.

    With ``background=True`` (the default) the service calls leave the training loop's
    critical path: ``report`` hands the report to a worker thread and returns, and the
    worker then asks for the next step's plan, so the trainer's next ``plan`` usually finds
    it waiting. The worker runs one call at a time and every other call first waits for it,
    so the client is never used by two threads at once and the next plan is asked for only
    after the report it follows has been applied: the plans are those a blocking loop gets.
    An error of a background call is raised by the next call.
    """

    def __init__(self, client: Any, *, background: bool = True) -> None:
        self.client = client
        self._weights: dict[str, float] | None = None
        self._pool = ThreadPoolExecutor(1, "scheduler") if background else None
        self._report: Future[Any] | None = None
        self._next_plan: tuple[int, int, Future[Any]] | None = None
        self._batch_size: int | None = None
        self._closed = False

    def _settle(self) -> None:
        """Wait for the background calls; keep the report's weights, drop a prefetch."""
        if self._report is not None:
            report, self._report = self._report, None
            self._keep_weights(report.result())
        if self._next_plan is not None:
            prefetch, self._next_plan = self._next_plan[2], None
            prefetch.result()

    def _keep_weights(self, result: Any) -> None:
        self._weights = dict(result.weights) if getattr(result, "weights", None) else None

    def plan(self, step: int, batch_size: int, round: int = 0) -> StepPlan:
        """The service's plan for the step (round ``round`` of it), slot by slot, with the
        prompt ids in a run that declares prompts."""
        if round:
            self._settle()
            return step_plan(self.client.plan(step, batch_size, round))
        self._batch_size = batch_size
        if self._next_plan is not None and self._next_plan[:2] == (step, batch_size):
            prefetch = self._next_plan[2]
            self._next_plan = None
            if self._report is not None:
                self._keep_weights(self._report.result())
                self._report = None
            return step_plan(prefetch.result())
        self._settle()
        return step_plan(self.client.plan(step, batch_size))

    def report(
        self,
        step: int,
        advantages: dict[str, list[float]],
        rewards: dict[str, list[float]] | None = None,
        filtered: Groups | None = None,
        groups: PromptGroups | None = None,
    ) -> None:
        """Forward the step's advantages and rewards (dropped groups, and the groups'
        prompts) to the service."""
        self._settle()
        # a client shaped like the old one (no filtered=, groups=) still serves a run that
        # drops nothing and declares no prompts
        extra: dict[str, Any] = {"filtered": filtered} if filtered else {}
        if groups:
            extra["groups"] = groups
        if self._pool is None:
            self._keep_weights(self.client.report(step, advantages, rewards, **extra))
            return
        self._report = self._pool.submit(self.client.report, step, advantages, rewards, **extra)
        if self._batch_size is not None:
            upcoming = self._pool.submit(self.client.plan, step + 1, self._batch_size)
            self._next_plan = (step + 1, self._batch_size, upcoming)

    def weights(self) -> dict[str, float]:
        """The weights the last report's answer carried (no extra request), else the
        service's current ones."""
        if self._report is not None:
            report, self._report = self._report, None
            self._keep_weights(report.result())
        if self._weights is not None:
            return dict(self._weights)
        self._settle()
        return dict(self.client.weights())

    def export(self) -> dict:
        """The client's checkpoint: the service's snapshot, or while it is down the local
        state and the reports still owed to it."""
        self._settle()
        return self.client.checkpoint()

    def import_(self, snapshot: dict) -> None:
        """Continue from a checkpoint: the service imports it now, or once it is back."""
        self._settle()
        self.client.restore(snapshot)

    def close(self, drain_timeout_s: float = 0.0) -> bool:
        """Finish the background calls, give the service up to ``drain_timeout_s`` seconds
        to take what it is owed (one try at 0), then close the client; True when nothing is
        left owed (what is left stays in the client's ``buffer_path``)."""
        if self._closed:
            return not self.client.buffered
        self._closed = True
        try:
            self._settle()
            return self.client.flush(drain_timeout_s)
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
            self.client.close()
