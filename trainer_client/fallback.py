"""What the client does without the service: schedule locally and probe back sparingly.

:class:`LocalScheduler` keeps a copy of the run's statistics: the last state fetched from
the service (``GET /v1/runs/{run}``: the counts ``n`` and window means, or an exported
snapshot with the exact windows) plus every report this client made since. From it, it
composes plans with the service's own math (``service.scheduling``: the strategy's weights,
then ``compose_batch`` seeded with ``plan_rng(seed, step, batch_size)``), so a plan made
locally is the plan the service would have made from the same statistics.

Limitation: a stateful strategy (``sec``, ``learning-progress``, ``exp3s``) is scheduled from
its initial state, which for all three is uniform: their state is not fetched, so the local
plans follow the counts alone until the service answers again.

Limitation: the ranks of one data-parallel run each schedule on their own copy while the
service is down. Each copy holds the state fetched last plus that rank's own reports, so
ranks agree on a step's plan only while their copies agree (e.g. one rank, or an outage
that starts before any rank reported since its last refresh). Training goes on either way;
the service becomes the single source of plans again as soon as it answers.

:class:`ProbeSchedule` spaces out the attempts to reach a service that is down
(exponential cool-down, capped), so an outage costs a step almost nothing.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from service.scheduling import (
    LocalStats,
    MissingRewards,
    Strategy,
    compose_batch,
    plan_rng,
    signal_of,
    strategy_from_dict,
    weights,
    window_values,
)
from trainer_client.errors import InvalidRequest, ServiceUnavailable

PLAN_MEMORY = 1024
"""Plans remembered per client, so asking for a step again gives the same batch."""


def parse_strategy(strategy: str | Mapping[str, Any] | None) -> Strategy:
    """A strategy from its wire form: a name, ``{"name": ..., **params}`` or None (default)."""
    if strategy is None:
        return strategy_from_dict({})
    if isinstance(strategy, str):
        return strategy_from_dict({"name": strategy})
    return strategy_from_dict(dict(strategy))


class LocalScheduler:
    """A run's statistics held in memory, and the plans and weights that follow from them.

    Until a configuration is known (from :meth:`configure` or a state loaded from the
    service) it cannot schedule: it does not know the distributions' names.
    """

    def __init__(self) -> None:
        self.names: list[str] | None = None
        self.strategy: Strategy = parse_strategy(None)
        self.seed = 0
        self.version = 0
        """Version of the service state the statistics start from (0: none fetched)."""
        self._index: dict[str, int] = {}
        self._stats = LocalStats(1)
        self._plans: OrderedDict[tuple[int, int], list[str]] = OrderedDict()

    def configure(
        self, distributions: Sequence[str], strategy: str | Mapping[str, Any] | None, seed: int
    ) -> None:
        """Set the run's configuration and start from empty statistics (uniform for UCB)."""
        names = list(distributions)
        if not names or len(set(names)) != len(names):
            raise ValueError(f"distributions must be non-empty and unique, got {names}")
        self.names = names
        self._index = {name: i for i, name in enumerate(names)}
        self.strategy = parse_strategy(strategy)
        self.seed = int(seed)
        self._stats = LocalStats(len(names), window=self.strategy.window)

    def load_run(self, run: Mapping[str, Any]) -> None:
        """Start from ``GET /v1/runs/{run}``'s answer: config, version, ``n`` and window means.

        That answer has each window's mean, not its values, so the window is rebuilt as
        ``min(n, window)`` copies of its mean: means stay exact until old values would be
        evicted, after which the oldest values are taken to equal the old mean.
        """
        config = run["config"]
        self.configure(config["distributions"], config["strategy"], config["seed"])
        for i, name in enumerate(config["distributions"]):
            entry = run["stats"][name]
            n = int(entry["n"])
            self._stats.add(i, [float(entry["window_mean"])] * min(n, self.strategy.window))
            self._stats.n[i] = n
        self.version = int(run["version"])

    def load_snapshot(self, snapshot: Mapping[str, Any]) -> None:
        """Start from an exported snapshot (``GET /v1/runs/{run}/export``): exact windows."""
        config = snapshot["config"]
        self.configure(config["distributions"], config["strategy"], config["seed"])
        for i, name in enumerate(config["distributions"]):
            entry = snapshot["distributions"][name]
            self._stats.add(i, entry["window"])
            self._stats.n[i] = int(entry["n"])
        self.version = int(snapshot["version"])

    def _require_config(self) -> list[str]:
        if self.names is None:
            raise ServiceUnavailable(
                "the service has not been reached yet, so the run's distributions are "
                "unknown and nothing can be scheduled locally; start the service, or pass "
                "distributions= (and strategy=, seed=) to the client"
            )
        return self.names

    def validate(
        self,
        advantages: Mapping[str, Sequence[float]],
        rewards: Mapping[str, Sequence[float]] | None,
    ) -> tuple[dict[str, list[float]], dict[str, list[float]] | None]:
        """The report's values as float lists, checked as the service checks them.

        Raises :class:`InvalidRequest` for a non-finite number or, once the configuration
        is known, a distribution the run does not have: such a report would be refused by
        the service, so it must not wait in the buffer.
        """
        checked: list[dict[str, list[float]]] = []
        for label, values_by_name in (("advantages", advantages), ("rewards", rewards or {})):
            out: dict[str, list[float]] = {}
            for name, values in values_by_name.items():
                if self.names is not None and name not in self._index:
                    raise InvalidRequest(
                        422,
                        "unknown_distribution",
                        f"{label} name distribution {name!r}, which the run does not have; "
                        f"it has {len(self.names)}: {', '.join(self.names[:10])}",
                    )
                floats = [float(v) for v in np.asarray(values, dtype=np.float64).ravel()]
                if not all(math.isfinite(v) for v in floats):
                    raise InvalidRequest(
                        422, "invalid_input", f"{label} of {name!r} hold NaN or infinite values"
                    )
                out[str(name)] = floats
            checked.append(out)
        try:
            window_values(signal_of(self.strategy), checked[0], checked[1])
        except MissingRewards as exc:
            raise InvalidRequest(422, "invalid_input", str(exc)) from None
        return checked[0], (checked[1] if rewards is not None else None)

    def add(
        self,
        advantages: Mapping[str, Sequence[float]],
        rewards: Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        """Count one report: its advantages, or what the strategy's signal makes of it
        (absolute values enter the windows), as the service does."""
        if self.names is None:
            return
        values = window_values(signal_of(self.strategy), advantages, rewards)
        for name, v in values.items():
            self._stats.add(self._index[name], list(v))

    def probabilities(self) -> dict[str, float]:
        """The strategy's weights over the current statistics, by distribution name."""
        names = self._require_config()
        p = weights(self.strategy, self._stats.stats())
        return {name: float(v) for name, v in zip(names, p, strict=True)}

    def remember_plan(self, step: int, batch_size: int, assignment: list[str]) -> None:
        """Keep a step's plan (from the service or local) so that asking again repeats it."""
        self._plans[(step, batch_size)] = assignment
        self._plans.move_to_end((step, batch_size))
        while len(self._plans) > PLAN_MEMORY:
            self._plans.popitem(last=False)

    def plan(self, step: int, batch_size: int) -> list[str]:
        """The distribution of each slot of the step's batch: remembered, else drawn now."""
        known = self._plans.get((step, batch_size))
        if known is not None:
            return known
        names = self._require_config()
        p = weights(self.strategy, self._stats.stats())
        picks = compose_batch(p, batch_size, plan_rng(self.seed, step, batch_size))
        assignment = [names[i] for i in picks]
        self.remember_plan(step, batch_size, assignment)
        return assignment


class ProbeSchedule:
    """When the client may try the network again after failures.

    After the first failure it waits ``initial_s``, doubling after each further failure up
    to ``max_s``; a success resets it. Times are ``time.monotonic()`` seconds passed in.
    """

    def __init__(self, initial_s: float, max_s: float) -> None:
        if not 0 <= initial_s <= max_s:
            raise ValueError(f"need 0 <= initial_s <= max_s, got {initial_s} and {max_s}")
        self.initial_s = initial_s
        self.max_s = max_s
        self.down_since: float | None = None
        self._delay = initial_s
        self._next_try = 0.0

    @property
    def down(self) -> bool:
        """Whether the last attempt failed."""
        return self.down_since is not None

    def may_try(self, now: float) -> bool:
        """Whether the cool-down since the last failure is over (always, when up)."""
        return now >= self._next_try

    def failed(self, now: float) -> bool:
        """Record a failed attempt; True when it starts an outage (was up before)."""
        entering = self.down_since is None
        if entering:
            self.down_since = now
            self._delay = self.initial_s
        else:
            self._delay = min(self._delay * 2, self.max_s)
        self._next_try = now + self._delay
        return entering

    def succeeded(self) -> float | None:
        """Record a success; the outage's start when it ends one, else None."""
        since, self.down_since = self.down_since, None
        self._next_try = 0.0
        return since
