"""How the trainer talks to a curriculum scheduler: a protocol and two implementations.

``LocalScheduler`` runs the service's pure scheduling math in-process (tests, offline runs);
``ServiceScheduler`` adapts the HTTP ``CurriculumClient`` of ``trainer_client.client``.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np

from service.scheduling import (
    BatchSummary,
    LocalStats,
    advance,
    compose_batch,
    initial_state,
    plan_rng,
    signal_of,
    strategy_from_dict,
    strategy_to_dict,
    weights,
    window_values,
)


class Scheduler(Protocol):
    """What the GRPO trainer needs from a curriculum scheduler."""

    def plan(self, step: int, batch_size: int) -> list[str]:
        """The distribution name of each of the step's ``batch_size`` prompt slots."""
        ...

    def report(
        self,
        step: int,
        advantages: dict[str, list[float]],
        rewards: dict[str, list[float]] | None = None,
    ) -> None:
        """Per distribution, the step's per-sample advantages (signed) and rewards."""
        ...

    def weights(self) -> dict[str, float]:
        """The current sampling probability of each distribution."""
        ...

    def export(self) -> dict:
        """An opaque snapshot of the scheduler's state, saved in checkpoints."""
        ...

    def import_(self, snapshot: dict) -> None:
        """Restore a snapshot made by :meth:`export`."""
        ...


class LocalScheduler:
    """The service's scheduling rule run in memory: same statistics, weights and plans.

    ``strategy`` is any strategy name of ``service.scheduling`` and ``params`` its parameters;
    a stateful strategy's state is advanced by every report, as the service does. Plans are
    drawn with ``plan_rng(seed, step, batch_size)``, as the service
    draws them, so a step's plan depends only on the seed, the step and the weights.
    """

    def __init__(
        self, distributions: list[str], strategy: str = "dump-ucb", seed: int = 0, **params: Any
    ) -> None:
        if not distributions or len(set(distributions)) != len(distributions):
            raise ValueError(f"distributions must be non-empty and unique, got {distributions}")
        self.names = list(distributions)
        self.index = {name: i for i, name in enumerate(self.names)}
        self.strategy = strategy_from_dict({"name": strategy, **params})
        self.seed = seed
        self.stats = LocalStats(len(self.names), window=self.strategy.window)
        self.state = initial_state(self.strategy, len(self.names))
        self.reward_sum = np.zeros(len(self.names))
        self.reward_n = np.zeros(len(self.names))

    def _probabilities(self) -> np.ndarray:
        return weights(self.strategy, self.stats.stats(), self.state)

    def plan(self, step: int, batch_size: int) -> list[str]:
        """One distribution per slot, drawn from the current weights."""
        rng = plan_rng(self.seed, step, batch_size)
        picks = compose_batch(self._probabilities(), batch_size, rng)
        return [self.names[i] for i in picks]

    def report(
        self,
        step: int,
        advantages: dict[str, list[float]],
        rewards: dict[str, list[float]] | None = None,
    ) -> None:
        """Add the advantages to each distribution's window; rewards feed :meth:`reward_means`."""
        for name in [*advantages, *(rewards or {})]:
            if name not in self.index:
                raise ValueError(f"unknown distribution {name!r}; this run has {self.names}")
        rewards = rewards or {}
        signal = window_values(signal_of(self.strategy), advantages, rewards)
        names = list(dict.fromkeys([*advantages, *rewards]))
        for name in names:
            self.stats.add(self.index[name], signal.get(name, []), rewards.get(name))
        for name, values in rewards.items():
            self.reward_sum[self.index[name]] += float(np.sum(values))
            self.reward_n[self.index[name]] += len(values)
        batch = BatchSummary.of_report(
            {self.index[n]: v for n, v in advantages.items()},
            {self.index[n]: v for n, v in rewards.items()},
        )
        self.state = advance(self.strategy, self.state, batch)

    def weights(self) -> dict[str, float]:
        """Sampling probability per distribution, summing to 1."""
        return dict(zip(self.names, map(float, self._probabilities()), strict=True))

    def reward_means(self) -> dict[str, float]:
        """Mean reported reward per distribution since the start (NaN before any report)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            means = self.reward_sum / self.reward_n
        return dict(zip(self.names, map(float, means), strict=True))

    def export(self) -> dict:
        """Everything needed to continue: config, counts, windows and reward sums."""
        return {
            "distributions": list(self.names),
            "strategy": strategy_to_dict(self.strategy),
            "seed": self.seed,
            "n": self.stats.n.tolist(),
            "windows": [self.stats.window_values(i) for i in range(len(self.names))],
            "reward_sum": self.reward_sum.tolist(),
            "reward_n": self.reward_n.tolist(),
            "strategy_state": self.state.tolist(),
            "reward_mean": self.stats.reward_mean.tolist(),
            "reward_best": self.stats.reward_best.tolist(),
            "rewarded": self.stats.rewarded.tolist(),
        }

    def import_(self, snapshot: dict) -> None:
        """Replace this scheduler's state with ``snapshot``; the distributions must match."""
        if snapshot["distributions"] != self.names:
            raise ValueError(
                f"snapshot distributions {snapshot['distributions']} differ from {self.names}"
            )
        self.strategy = strategy_from_dict(snapshot["strategy"])
        self.seed = int(snapshot["seed"])
        self.stats = LocalStats(len(self.names), window=self.strategy.window)
        for i, window in enumerate(snapshot["windows"]):
            self.stats.add(i, window)
        self.stats.n = np.asarray(snapshot["n"], dtype=np.float64)
        self.reward_sum = np.asarray(snapshot["reward_sum"], dtype=np.float64)
        self.reward_n = np.asarray(snapshot["reward_n"], dtype=np.float64)
        self.state = np.asarray(snapshot["strategy_state"], dtype=np.float64)
        self.stats.reward_mean = np.asarray(snapshot["reward_mean"], dtype=np.float64)
        self.stats.reward_best = np.asarray(snapshot["reward_best"], dtype=np.float64)
        self.stats.rewarded = np.asarray(snapshot["rewarded"], dtype=bool)


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

    def plan(self, step: int, batch_size: int) -> list[str]:
        """The service's plan for the step, slot by slot."""
        self._batch_size = batch_size
        if self._next_plan is not None and self._next_plan[:2] == (step, batch_size):
            prefetch = self._next_plan[2]
            self._next_plan = None
            if self._report is not None:
                self._keep_weights(self._report.result())
                self._report = None
            return list(prefetch.result().assignment)
        self._settle()
        return list(self.client.plan(step, batch_size).assignment)

    def report(
        self,
        step: int,
        advantages: dict[str, list[float]],
        rewards: dict[str, list[float]] | None = None,
    ) -> None:
        """Forward the step's advantages and rewards to the service."""
        self._settle()
        if self._pool is None:
            self._keep_weights(self.client.report(step, advantages, rewards))
            return
        self._report = self._pool.submit(self.client.report, step, advantages, rewards)
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
        """The service's snapshot of the run."""
        self._settle()
        return self.client.export()

    def import_(self, snapshot: dict) -> None:
        """Restore the run on the service from ``snapshot``."""
        self._settle()
        self.client.import_(snapshot)

    def close(self) -> None:
        """Finish the background calls, then close the client."""
        try:
            self._settle()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
            self.client.close()
