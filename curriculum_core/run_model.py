"""A run held in memory: what the service keeps in Redis, as plain numpy.

:class:`RunModel` is the one in-memory model of a run. The trainer client schedules on it
while the service cannot be reached, the bundled trainer runs it in-process
(``--scheduler local``), and the tests use it as the reference the service must agree with.
It applies a report exactly as the service's report script does (the strategy's signal into
float32 windows of the last ``window`` absolute values, the cumulative counts, the reward
moving average, a stateful strategy's state, the version and the report id), computes the
same weights, composes the same plans, and reads and writes the service's snapshot format
(``GET /v1/runs/{run}/export``), so a state can move between the two without loss.

A run that declares its prompts (``prompts``) also plans the prompt of each slot
(:meth:`RunModel.plan_step`) and moves each prompt's record on reports that name them
(``groups``), with :mod:`curriculum_core.prompts`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from curriculum_core.composition import compose_batch, plan_rng
from curriculum_core.prompts import (
    PromptSelection,
    PromptState,
    apply_outcomes,
    outcome_of,
    plan_prompts,
    prompt_rng,
    selection_from_dict,
    selection_to_dict,
)
from curriculum_core.registry import (
    DEFAULT_STRATEGY,
    Strategy,
    advance,
    initial_state,
    signal_of,
    strategy_from_dict,
    strategy_to_dict,
    weights,
)
from curriculum_core.signals import MissingRewards, window_values
from curriculum_core.stats import MAX_REPORT_VALUE, BatchSummary, RunStats, reportable

SNAPSHOT_FORMAT = "rl-curriculum.snapshot/1"
"""The ``format`` field of a snapshot (the service's export format)."""

DEFAULT_REPORT_ID_RETENTION = 10_000
"""Report ids remembered for deduplication, as the service's default."""


class ReportError(ValueError):
    """A report the service would refuse (422): an unknown distribution, a NaN or infinite
    value, no advantages at all, or no rewards where the strategy's signal needs them."""


def parse_strategy(strategy: str | Mapping[str, Any] | None) -> Strategy:
    """A strategy from its wire form: a name, ``{"name": ..., **params}`` or None (default)."""
    if strategy is None:
        return strategy_from_dict({"name": DEFAULT_STRATEGY})
    if isinstance(strategy, str):
        return strategy_from_dict({"name": strategy})
    return strategy_from_dict(dict(strategy))


Values = Mapping[str, Sequence[float]]

DEFAULT_PLAN_RETENTION = 1024
"""Plans that name prompts kept per run (the first request for a step fixes its plan)."""


@dataclass(frozen=True)
class Plan:
    """One step's plan: the distribution of each slot and, for a run that declares its
    prompts, the prompt id of each slot (``None`` otherwise)."""

    assignment: list[str]
    prompt_ids: list[int] | None = None

    @property
    def counts(self) -> dict[str, int]:
        """Slots per distribution, in first-seen order."""
        out: dict[str, int] = {}
        for name in self.assignment:
            out[name] = out.get(name, 0) + 1
        return out


@dataclass(frozen=True)
class Group:
    """One reported group: its distribution, prompt id and rollouts' rewards."""

    distribution: str
    prompt: int
    rewards: list[float]


class RunModel:
    """One run's configuration and learnt state.

    ``distributions`` are the names, in the run's order; ``strategy`` its wire form (None:
    ``dump-ucb`` with the paper's constants); ``seed`` seeds every step's plan. ``prompts``
    (optional) declares every distribution's prompt count, ``{name: n}``: plans then name
    a prompt for each slot (:mod:`curriculum_core.prompts`), selected as
    ``prompt_selection`` says (its wire form; None: the defaults).
    """

    def __init__(
        self,
        distributions: Sequence[str],
        strategy: str | Mapping[str, Any] | None = None,
        seed: int = 0,
        *,
        run_id: str = "local",
        report_id_retention: int = DEFAULT_REPORT_ID_RETENTION,
        prompts: Mapping[str, int] | None = None,
        prompt_selection: Mapping[str, Any] | None = None,
        plan_retention: int = DEFAULT_PLAN_RETENTION,
    ) -> None:
        names = [str(name) for name in distributions]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"distributions must be non-empty and unique, got {names}")
        if report_id_retention < 1:
            raise ValueError(f"report_id_retention must be >= 1, got {report_id_retention}")
        self.run_id = run_id
        self.names = names
        self.index = {name: i for i, name in enumerate(names)}
        self.strategy = parse_strategy(strategy)
        self.seed = int(seed)
        self.created_at = ""
        self.version = 0
        self.report_id_retention = report_id_retention
        k, w = len(names), self.strategy.window
        self.n = np.zeros(k)
        self.rewards = np.zeros((k, 4))
        """Per distribution: reward count, moving average, last batch mean, best average."""
        self._rings = np.zeros((k, w), dtype=np.float32)
        self._heads = np.zeros(k, dtype=np.int64)
        self._lengths = np.zeros(k, dtype=np.int64)
        self.state = initial_state(self.strategy, k)
        self._report_ids: OrderedDict[str, int] = OrderedDict()
        self.prompt_counts: dict[str, int] | None = None
        self.selection: PromptSelection | None = None
        self.prompts: PromptState | None = None
        if prompts is not None:
            if set(prompts) != set(names):
                raise ValueError(
                    f"prompts must give every distribution's prompt count; missing "
                    f"{sorted(set(names) - set(prompts))[:10]}, unknown "
                    f"{sorted(set(prompts) - set(names))[:10]}"
                )
            self.prompt_counts = {name: int(prompts[name]) for name in names}
            self.selection = selection_from_dict(prompt_selection)
            self.prompts = PromptState.initial(list(self.prompt_counts.values()))
        elif prompt_selection is not None:
            raise ValueError("prompt_selection needs prompts (each distribution's count)")
        if plan_retention < 1:
            raise ValueError(f"plan_retention must be >= 1, got {plan_retention}")
        self.plan_retention = plan_retention
        self._plans: OrderedDict[tuple[int, int, int], Plan] = OrderedDict()

    @property
    def k(self) -> int:
        """Number of distributions."""
        return len(self.names)

    # --- reports --------------------------------------------------------------------------

    def validate(
        self, advantages: Values, rewards: Values | None
    ) -> tuple[dict[str, list[float]], dict[str, list[float]] | None]:
        """The report's values as float lists, checked as the service checks them.

        Raises :class:`ReportError` with the service's wording for anything it would refuse.
        """
        checked: list[dict[str, list[float]]] = []
        for label, by_name in (("advantages", advantages), ("rewards", rewards or {})):
            out: dict[str, list[float]] = {}
            for name, values in by_name.items():
                if name not in self.index:
                    shown = ", ".join(self.names[:10]) + (", ..." if self.k > 10 else "")
                    raise ReportError(
                        f"{label} name distribution {name!r}, which the run does not have; "
                        f"it has {self.k}: {shown}"
                    )
                floats = np.asarray(values, dtype=np.float64).ravel().tolist()
                if not reportable(floats):
                    raise ReportError(
                        f"{label} of {name!r} hold NaN, infinite or values beyond "
                        f"+-{MAX_REPORT_VALUE:g}"
                    )
                out[str(name)] = floats
            checked.append(out)
        if not any(checked[0].values()):
            raise ReportError("a report needs at least one advantage value")
        try:
            window_values(signal_of(self.strategy), checked[0], checked[1])
        except MissingRewards as exc:
            raise ReportError(str(exc)) from None
        return checked[0], (checked[1] if rewards is not None else None)

    def has_report(self, report_id: str) -> bool:
        """Whether ``report_id`` was applied (among the last ``report_id_retention``)."""
        return report_id in self._report_ids

    def validate_groups(self, groups: Sequence[Mapping[str, Any]]) -> list[Group]:
        """A report's ``groups`` (``{distribution, prompt, rewards}`` each), checked.

        Raises :class:`ReportError` for groups in a run without prompts, an unknown
        distribution, a prompt id out of range, or rewards empty or not finite.
        """
        if self.prompt_counts is None:
            raise ReportError("groups name prompts, and this run declares none")
        out = []
        for i, group in enumerate(groups):
            name = str(group.get("distribution"))
            if name not in self.prompt_counts:
                raise ReportError(f"groups[{i}] names distribution {name!r}, which the run lacks")
            n, prompt = self.prompt_counts[name], group.get("prompt")
            if isinstance(prompt, bool) or not isinstance(prompt, int) or not 0 <= prompt < n:
                raise ReportError(
                    f"groups[{i}].prompt must be an integer in [0, {n}) for {name!r}, "
                    f"got {prompt!r}"
                )
            floats = np.asarray(group.get("rewards", ()), dtype=np.float64).ravel().tolist()
            if not floats or not reportable(floats):
                raise ReportError(
                    f"groups[{i}].rewards must be one or more finite values within "
                    f"+-{MAX_REPORT_VALUE:g}"
                )
            out.append(Group(name, prompt, floats))
        return out

    def apply(
        self,
        report_id: str,
        advantages: Values,
        rewards: Values | None = None,
        groups: Sequence[Group] = (),
    ) -> bool:
        """Apply one report, as the service does; False (and nothing changes) when
        ``report_id`` was applied before. The values must be valid (:meth:`validate`,
        :meth:`validate_groups`); ``groups`` move the prompts' state."""
        if report_id in self._report_ids:
            return False
        if groups:
            assert self.prompts is not None and self.selection is not None
            above = self.selection.solved_above
            self.prompts = apply_outcomes(
                self.prompts,
                self.selection,
                (
                    outcome_of(self.index[g.distribution], g.prompt, g.rewards, above)
                    for g in groups
                ),
            )
        rewards = rewards or {}
        for name, values in window_values(signal_of(self.strategy), advantages, rewards).items():
            if len(values):
                self._push(self.index[name], values)
        alpha = self.strategy.reward_alpha
        for name, values in rewards.items():
            if not len(values):
                continue
            record = self.rewards[self.index[name]]
            batch_mean = float(np.mean(np.asarray(values, dtype=np.float64)))
            if record[0] == 0:
                record[1] = record[3] = batch_mean
            else:
                record[1] = (1 - alpha) * record[1] + alpha * batch_mean
                record[3] = max(record[3], record[1])
            record[0] += len(values)
            record[2] = batch_mean
        if self.strategy.stateful:
            summary = BatchSummary.of_report(
                {self.index[name]: v for name, v in advantages.items()},
                {self.index[name]: v for name, v in rewards.items()},
            )
            self.state = advance(self.strategy, self.state, summary)
        self.version += 1
        self._remember(report_id, self.version)
        return True

    def _push(self, i: int, values: Sequence[float]) -> None:
        """Append ``|values|`` (float32) to ring ``i``: the last ``window`` are kept."""
        w = self.strategy.window
        new = np.abs(np.asarray(values, dtype=np.float64)).astype(np.float32)
        self.n[i] += new.size
        tail = new[-w:]
        positions = (self._heads[i] + np.arange(tail.size)) % w
        self._rings[i, positions] = tail
        self._heads[i] = (self._heads[i] + tail.size) % w
        self._lengths[i] = min(w, self._lengths[i] + tail.size)

    def _remember(self, report_id: str, version: int) -> None:
        self._report_ids[report_id] = version
        while len(self._report_ids) > self.report_id_retention:
            self._report_ids.popitem(last=False)

    # --- what follows from the state --------------------------------------------------------

    def window(self, i: int) -> np.ndarray:
        """Distribution ``i``'s window, oldest first (float32)."""
        length, head = int(self._lengths[i]), int(self._heads[i])
        ring = self._rings[i]
        if length < self.strategy.window:
            return ring[:length].copy()
        return np.concatenate([ring[head:], ring[:head]])

    def stats(self) -> RunStats:
        """The statistics a strategy reads."""
        sums = self._rings.astype(np.float64).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(self._lengths > 0, sums / np.maximum(self._lengths, 1), 0.0)
        return RunStats(
            n=self.n.copy(),
            window_mean=means,
            reward_mean=self.rewards[:, 1].copy(),
            reward_best=self.rewards[:, 3].copy(),
        )

    def weights(self) -> np.ndarray:
        """Sampling probabilities, shape ``(K,)``, summing to 1."""
        return weights(self.strategy, self.stats(), self.state)

    def named_weights(self) -> dict[str, float]:
        """Sampling probability by distribution name."""
        return dict(zip(self.names, self.weights().tolist(), strict=True))

    def plan(self, step: int, batch_size: int, round: int = 0) -> list[str]:
        """The distribution of each slot of generation round ``round`` of step ``step``'s
        batch, drawn as the service draws it: from the current weights with
        ``plan_rng(seed, step, batch_size, round)``."""
        if step < 0 or round < 0:
            raise ValueError(f"step and round must be >= 0, got {step} and {round}")
        rng = plan_rng(self.seed, step, batch_size, round)
        picks = compose_batch(self.weights(), batch_size, rng)
        return [self.names[i] for i in picks]

    def plan_step(self, step: int, batch_size: int, round: int = 0) -> Plan:
        """Round ``round`` of step ``step``'s plan. In a run that declares prompts, the
        first call for ``(step, batch_size, round)`` fixes it, names each slot's prompt and
        moves the prompts' cursors; later calls return the same plan (the last
        ``plan_retention`` are kept)."""
        if self.prompts is None:
            return Plan(self.plan(step, batch_size, round))
        key = (int(step), int(batch_size), int(round))
        if key in self._plans:
            return self._plans[key]
        assert self.selection is not None
        picks = compose_batch(
            self.weights(), batch_size, plan_rng(self.seed, step, batch_size, round)
        )
        ids, self.prompts = plan_prompts(
            self.prompts,
            self.selection,
            picks,
            self.seed,
            prompt_rng(self.seed, step, batch_size, round),
        )
        plan = Plan([self.names[i] for i in picks], ids.tolist())
        self._plans[key] = plan
        while len(self._plans) > self.plan_retention:
            self._plans.popitem(last=False)
        return plan

    # --- snapshots ----------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """The run's configuration, as the service shows it."""
        config: dict[str, Any] = {
            "distributions": list(self.names),
            "strategy": strategy_to_dict(self.strategy),
            "seed": self.seed,
            "created_at": self.created_at,
        }
        if self.prompt_counts is not None and self.selection is not None:
            config["prompts"] = dict(self.prompt_counts)
            config["prompt_selection"] = selection_to_dict(self.selection)
        return config

    def snapshot(self) -> dict[str, Any]:
        """The state in the service's export format (without history), JSON-ready."""
        dists = {}
        for i, name in enumerate(self.names):
            reward_n, reward_mean, reward_last, reward_best = self.rewards[i].tolist()
            dists[name] = {
                "n": int(self.n[i]),
                "window": [float(str(v)) for v in self.window(i)],  # shortest decimals
                "reward_n": int(reward_n),
                "reward_mean": reward_mean,
                "reward_last": reward_last,
                "reward_best": reward_best,
            }
        out = {
            "format": SNAPSHOT_FORMAT,
            "run_id": self.run_id,
            "version": self.version,
            "config": self.config(),
            "distributions": dists,
            "report_ids": [[rid, v] for rid, v in self._report_ids.items()],
            "history": [],
            "strategy_state": self.state.tolist(),
        }
        if self.prompts is not None:
            out["prompt_state"] = self.prompts.to_json()
        return out

    @classmethod
    def from_snapshot(
        cls,
        snapshot: Mapping[str, Any],
        *,
        report_id_retention: int = DEFAULT_REPORT_ID_RETENTION,
    ) -> RunModel:
        """The run a snapshot describes (``GET /v1/runs/{run}/export``, or :meth:`snapshot`).

        A strategy state is taken when the snapshot's strategy is the run's; a snapshot
        without one (or of another strategy) starts the strategy from its initial state.
        """
        config = snapshot["config"]
        model = cls(
            config["distributions"],
            config["strategy"],
            config["seed"],
            run_id=str(snapshot.get("run_id", "local")),
            report_id_retention=report_id_retention,
            prompts=config.get("prompts"),
            prompt_selection=config.get("prompt_selection"),
        )
        model.created_at = str(config.get("created_at", ""))
        model.load_state(snapshot)
        return model

    def load_state(self, snapshot: Mapping[str, Any]) -> None:
        """Take a snapshot's learnt state (its distributions must be this run's, in order);
        the configuration stays this model's. The prompts' state is taken when the snapshot
        has one and this run declares the same prompt counts; otherwise they start afresh."""
        dists = snapshot["distributions"]
        if list(dists) != self.names:
            raise ValueError(
                f"the snapshot's distributions {list(dists)[:10]} are not this run's "
                f"{self.names[:10]} (names and order must be equal)"
            )
        fresh = RunModel(
            self.names,
            strategy_to_dict(self.strategy),
            self.seed,
            report_id_retention=self.report_id_retention,
        )
        for i, entry in enumerate(dists.values()):
            fresh._push(i, entry["window"])
            fresh.n[i] = int(entry["n"])
            fresh.rewards[i] = (
                entry.get("reward_n", 0),
                entry.get("reward_mean", 0.0),
                entry.get("reward_last", 0.0),
                entry.get("reward_best", 0.0),
            )
        state = np.asarray(snapshot.get("strategy_state") or [], dtype=np.float64)
        same = snapshot["config"]["strategy"].get("name") == self.strategy.name
        if same and state.shape == fresh.state.shape:
            fresh.state = state
        for rid, version in snapshot.get("report_ids", []):
            fresh._remember(str(rid), int(version))
        self.n, self.rewards, self.state = fresh.n, fresh.rewards, fresh.state
        self._rings, self._heads, self._lengths = fresh._rings, fresh._heads, fresh._lengths
        self._report_ids = fresh._report_ids
        self.version = int(snapshot.get("version", 0))
        if self.prompt_counts is not None:
            counts = list(self.prompt_counts.values())
            saved = snapshot.get("prompt_state")
            same = snapshot["config"].get("prompts") == self.prompt_counts
            self.prompts = (
                PromptState.from_json(counts, saved)
                if saved is not None and same
                else PromptState.initial(counts)
            )
            self._plans.clear()
