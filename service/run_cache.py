"""A run's immutable configuration (:class:`Run`) and each process's cache of them.

Run configs never change for a run's lifetime, so each process caches them keyed by run id;
every script checks the cached ``incarnation``, so a run deleted and created again is
reloaded, never served stale.
"""

from __future__ import annotations

import functools
import json
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from pydantic_core import to_json

from curriculum_core import (
    RunStats,
    Strategy,
    advance,
    initial_state,
    strategy_from_dict,
    strategy_to_dict,
)
from curriculum_core.prompts import PromptSelection, selection_from_dict, selection_to_dict
from service.errors import RunNotFound, UnknownDistribution
from service.schemas import RunConfigOut
from service.store.codec import decode_journal
from service.store.redis_store import RedisStore, RunMeta, StrategyInputs


@dataclass(frozen=True)
class Run:
    """A run's immutable configuration, as cached by each process."""

    run_id: str
    incarnation: str
    token_hash: str
    distributions: tuple[str, ...]
    strategy: Strategy
    seed: int
    created_at: str
    index: dict[str, int]
    prompt_counts: tuple[int, ...] | None = None
    """Prompts per distribution, in the run's order, in a run that declares them."""
    selection: PromptSelection | None = None

    @classmethod
    def from_meta(cls, run_id: str, meta: RunMeta, legacy_reward_alpha: float) -> Run:
        config = json.loads(meta.config_json)
        names = tuple(config["distributions"])
        prompts = config.get("prompts")
        return cls(
            run_id=run_id,
            incarnation=meta.incarnation,
            token_hash=meta.token_hash,
            distributions=names,
            strategy=stored_strategy(config["strategy"], legacy_reward_alpha),
            seed=int(config["seed"]),
            created_at=config["created_at"],
            index={name: i for i, name in enumerate(names)},
            prompt_counts=tuple(int(prompts[n]) for n in names) if prompts else None,
            selection=selection_from_dict(config["prompt_selection"]) if prompts else None,
        )

    @property
    def k(self) -> int:
        return len(self.distributions)

    @functools.cached_property
    def names_json(self) -> tuple[bytes, ...]:
        """Each distribution's name as a JSON string (as pydantic writes it), in order."""
        return tuple(to_json(name) for name in self.distributions)

    def config_out(self) -> RunConfigOut:
        return RunConfigOut(
            distributions=list(self.distributions),
            strategy=strategy_to_dict(self.strategy),
            seed=self.seed,
            created_at=self.created_at,
            **self.prompt_config(),
        )

    def prompt_config(self) -> dict[str, object]:
        """``prompts`` and ``prompt_selection`` as the config shows them (none without)."""
        if self.prompt_counts is None or self.selection is None:
            return {}
        return {
            "prompts": dict(zip(self.distributions, self.prompt_counts, strict=True)),
            "prompt_selection": selection_to_dict(self.selection),
        }

    def named(self, values: np.ndarray) -> dict[str, float]:
        # tolist() converts in one C loop; float(v) per numpy scalar took ms at K=10,000
        return dict(zip(self.distributions, np.asarray(values).tolist(), strict=True))

    def index_of(self, name: str) -> int:
        try:
            return self.index[name]
        except KeyError:
            shown = ", ".join(self.distributions[:10])
            more = ", ..." if self.k > 10 else ""
            raise UnknownDistribution(
                f"run {self.run_id!r} has no distribution {name!r}; it has {self.k}: {shown}{more}"
            ) from None

    def strategy_view(self, inputs: StrategyInputs) -> tuple[RunStats, np.ndarray]:
        """The statistics and the strategy state as of ``inputs.version``: the stored state
        with the journal of later reports folded in, in the order they were applied."""
        stats = RunStats(
            n=inputs.n,
            window_mean=inputs.window_mean,
            reward_mean=inputs.rewards[:, 1],
            reward_best=inputs.rewards[:, 3],
        )
        strategy = self.strategy
        if not strategy.stateful:
            return stats, np.zeros(0)
        state = inputs.state if inputs.state.size else initial_state(strategy, stats.k)
        for blob in inputs.journal:
            version, batch = decode_journal(blob)
            if version > inputs.state_version:
                state = advance(strategy, state, batch)
        return stats, state


def stored_strategy(stored: dict[str, object], legacy_reward_alpha: float) -> Strategy:
    """A stored run's strategy. Runs created before ``reward_alpha`` became a strategy
    parameter do not store it: they keep the deployment's ``CURRICULUM_REWARD_EMA_ALPHA``,
    the value that they were created under, so their math does not change."""
    return strategy_from_dict({"reward_alpha": legacy_reward_alpha, **stored})


def config_json(
    names: list[str],
    strategy: Strategy,
    seed: int,
    created_at: str,
    prompts: dict[str, int] | None = None,
    selection: PromptSelection | None = None,
) -> str:
    """The ``config`` field a run's meta stores (``prompts`` and ``prompt_selection`` only
    in a run that declares prompts)."""
    config: dict[str, object] = {
        "distributions": names,
        "strategy": strategy_to_dict(strategy),
        "seed": seed,
        "created_at": created_at,
    }
    if prompts is not None and selection is not None:
        config["prompts"] = {name: prompts[name] for name in names}
        config["prompt_selection"] = selection_to_dict(selection)
    return json.dumps(config)


class RunCache:
    """The configs of the ``size`` runs used last (none when ``size`` is 0), loaded from
    the store on a miss."""

    def __init__(self, store: RedisStore, size: int, legacy_reward_alpha: float) -> None:
        self._store = store
        self._size = size
        self._legacy_reward_alpha = legacy_reward_alpha
        self._runs: OrderedDict[str, Run] = OrderedDict()

    def cached(self, run_id: str) -> Run | None:
        """The run's config if it is cached (no I/O)."""
        cached = self._runs.get(run_id)
        if cached is not None:
            self._runs.move_to_end(run_id)
        return cached

    async def stored_meta(self, run_id: str) -> RunMeta | None:
        """The run's meta as stored now, in one lookup (``None``: no such run). Not parsed:
        a caller that is refused costs the same whether the run exists or not."""
        try:
            return await self._store.load_meta(run_id)
        except RunNotFound:
            return None

    def keep(self, run_id: str, meta: RunMeta) -> Run:
        """The run of ``meta``, cached from now on."""
        run = Run.from_meta(run_id, meta, self._legacy_reward_alpha)
        if self._size > 0:
            self._runs[run_id] = run
            self._runs.move_to_end(run_id)
            while len(self._runs) > self._size:
                self._runs.popitem(last=False)
        return run

    async def load(self, run_id: str) -> Run:
        """The run's config, cached or from the store; :class:`RunNotFound` if none."""
        run = self.cached(run_id)
        if run is not None:
            return run
        meta = await self.stored_meta(run_id)
        if meta is None:
            raise RunNotFound(f"no run with id {run_id!r}")
        return self.keep(run_id, meta)

    def drop(self, run_id: str) -> None:
        """Forget the run (deleted, or found recreated)."""
        self._runs.pop(run_id, None)
