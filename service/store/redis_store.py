"""All Redis access of the service: one typed method per Lua script.

Methods take and return plain numbers, bytes and numpy arrays; the scheduling math and the
HTTP layer never see a Redis reply. Connection failures become :class:`StoreUnavailable`,
a missing run :class:`RunNotFound`, a recreated run :class:`StaleRun`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np
import redis.asyncio as aioredis
from redis import exceptions as redis_errors
from redis.asyncio.cluster import RedisCluster

from service.errors import (
    InvalidInput,
    PlanExpired,
    RunBudgetExceeded,
    RunConflict,
    RunNotFound,
    StaleRun,
    StoreBusy,
    StoreUnavailable,
)
from service.store.codec import (
    PackedReport,
    Reporter,
    decode_last_steps,
    decode_reporters,
    join_rings,
    pack_stats,
    rank_field,
    split_windows,
    unpack_f64,
    unpack_rewards,
    unpack_stats,
)
from service.store.diagnosis import StoreDiagnosis, diagnose
from service.store.keys import (
    PLAN_ENTRY_OVERHEAD,
    PLANS_KEY,
    REWARD_FIELDS,
    STORE_LAYOUT,
    plan_field,
    run_key_bytes,
    run_keys,
)
from service.store.listing import RunPage, scan_runs
from service.store.replies import (
    CreateReply,
    ExportReply,
    GetPlanReply,
    HistoryReply,
    ImportReply,
    PutPlanReply,
    ReadPromptsReply,
    ReadStateReply,
    ReportReply,
    Status,
    status_of,
)
from service.store.scripts import register_scripts

T = TypeVar("T")

_UNAVAILABLE = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    redis_errors.ClusterDownError,
    redis_errors.TryAgainError,
    redis_errors.MasterDownError,
    redis_errors.ReadOnlyError,
    OSError,
)


@dataclass(frozen=True)
class RunMeta:
    """The immutable part of a run: what the service may cache, keyed by ``incarnation``."""

    config_json: str
    incarnation: str
    token_hash: str


@dataclass(frozen=True)
class StrategyInputs:
    """Everything a strategy reads, as of ``version``, read in one consistent view.

    ``state`` is the strategy's state as of ``state_version``; ``journal`` holds the
    summaries of the reports applied since, oldest first, to fold into it.
    """

    version: int
    n: np.ndarray
    window_mean: np.ndarray
    rewards: np.ndarray
    state: np.ndarray
    state_version: int
    journal: list[bytes]


@dataclass(frozen=True)
class RunState:
    """Everything ``GET /runs/{run}`` shows, read in one consistent view. ``reporters`` and
    ``last_step`` (per distribution, ``None``: never sampled) are read only when asked."""

    inputs: StrategyInputs
    weights_version: int
    weights: np.ndarray
    reporters: list[Reporter] | None = None
    last_step: list[int | None] | None = None


@dataclass(frozen=True)
class ReportOutcome:
    """What applying a report did. ``weights`` is set only for a duplicate."""

    duplicate: bool
    inputs: StrategyInputs
    weights_version: int | None = None
    weights: np.ndarray | None = None


@dataclass(frozen=True)
class PlanLookup:
    """A fixed plan (``plan``, as keys.py keeps it), or the weights to draw one from."""

    plan: bytes | None
    version: int = 0
    weights_version: int = 0
    weights: np.ndarray | None = None


@dataclass(frozen=True)
class RawSnapshot:
    """A run's learnt state as stored, for export."""

    version: int
    n: np.ndarray
    window_mean: np.ndarray
    rewards: np.ndarray
    windows: dict[int, bytes]
    report_ids: list[tuple[str, int]]
    history: list[bytes]
    inputs: StrategyInputs
    prompts: bytes = b""
    prompt_dists: bytes = b""


@dataclass(frozen=True)
class PromptRead:
    """A run's prompt state as read at ``version`` (meta.prompt_version, keys.py): its
    ``prompt_dists`` string and the records asked for."""

    version: str
    dists: bytes
    records: bytes


@dataclass(frozen=True)
class PromptWrite:
    """What a plan or report changes in a run's prompt state, computed from what was read
    at ``version``: the new ``prompt_dists`` string and the new records of ``flat_ids``;
    ``next_version``, the ``meta.prompt_version`` of the state after it (keys.py)."""

    version: str
    dists: bytes
    next_version: str
    flat_ids: bytes = b""
    records: bytes = b""


class PromptStateMoved(Exception):
    """The prompt state changed between the read and the write (``CONFLICT``): nothing was
    written; read and compute again."""


class WeightsMoved(Exception):
    """The weights a plan was drawn from are no longer the run's (``MOVED``): nothing was
    written; ``current`` holds the run's weights to draw from."""

    def __init__(self, current: PlanLookup) -> None:
        super().__init__("the run's weights moved")
        self.current = current


@dataclass(frozen=True)
class PutPlan:
    """The plan that holds for a step after ``put_plan`` (as keys.py keeps it), and whether
    it is the one this call stored (else another caller fixed it first)."""

    plan: bytes
    stored: bool


@dataclass(frozen=True)
class RunSummary:
    """What the listing of runs shows of one, from its ``meta`` alone."""

    run_id: str
    config_json: str
    version: int
    layout: int
    reported_at: float | None


class _WithInputs(Protocol):
    """A reply that carries a strategy's inputs (report, read_state, export)."""

    @property
    def version(self) -> int: ...
    @property
    def stats(self) -> bytes: ...
    @property
    def rewards(self) -> bytes: ...
    @property
    def state(self) -> bytes: ...
    @property
    def state_version(self) -> int: ...
    @property
    def journal(self) -> list[bytes]: ...


def _inputs(reply: _WithInputs) -> StrategyInputs:
    """Decode the strategy inputs of a reply."""
    records = unpack_stats(reply.stats)
    rewards = reply.rewards
    return StrategyInputs(
        version=int(reply.version),
        n=records["n"].copy(),
        window_mean=records["mean"].copy(),
        rewards=unpack_rewards(rewards) if rewards else np.zeros((records.size, REWARD_FIELDS)),
        state=unpack_f64(reply.state or b""),
        state_version=int(reply.state_version),
        journal=list(reply.journal),
    )


def _check_status(reply: list[Any]) -> None:
    status = status_of(reply)
    if status == Status.RUN_MISSING:
        raise RunNotFound("no such run")
    if status == Status.RUN_RECREATED:
        raise StaleRun()
    if status == Status.OTHER_LAYOUT:
        raise RunConflict(
            "this run was stored by another version of the service, in a storage layout this "
            f"version does not read (it reads layout {STORE_LAYOUT}); export the run with the "
            "version that created it and import the snapshot into a new run here"
        )
    if status == Status.INVALID:
        raise InvalidInput(_decode(reply[1]))


def _decode(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


class RedisStore:
    """The service's state in Redis (single node or Cluster)."""

    def __init__(self, client: Any, max_connections: int) -> None:
        self._client = client
        self._scripts = register_scripts(client)
        self._max_connections = max_connections

    @classmethod
    def from_url(
        cls, url: str, *, cluster: bool = False, timeout_s: float = 5.0, max_connections: int = 100
    ) -> RedisStore:
        """Connect lazily to ``url`` (nothing happens until the first command), with at most
        ``max_connections`` open connections (to each node of a Cluster)."""
        options: dict[str, Any] = {
            "socket_timeout": timeout_s,
            "socket_connect_timeout": timeout_s,
            "decode_responses": False,
            "max_connections": max_connections,
        }
        if cluster:
            client: Any = RedisCluster.from_url(url, **options)
        else:
            client = aioredis.from_url(url, health_check_interval=30, **options)
        return cls(client, max_connections)

    async def connect(self) -> None:
        """Learn a Cluster's slot map now, before requests arrive; no-op for one node.

        Concurrent first commands would each rebuild the map and close connections the
        others are using. If Redis is down, the first command retries later.
        """
        if isinstance(self._client, RedisCluster):
            with contextlib.suppress(*_UNAVAILABLE):
                await self._client.initialize()

    async def close(self) -> None:
        """Close every pooled connection."""
        await self._client.aclose()

    async def _run(self, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except redis_errors.MaxConnectionsError as exc:
            # every pooled connection is busy: Redis is up, this process is overloaded
            raise StoreBusy(
                f"all {self._max_connections} connections of this service process to Redis "
                "are in use (CURRICULUM_REDIS_MAX_CONNECTIONS); retry shortly"
            ) from exc
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(f"Redis is unreachable: {exc}") from exc

    async def _script(self, name: str, run_id: str, args: list[Any]) -> list[Any]:
        keys = run_key_bytes(run_id)
        reply: list[Any] = await self._run(lambda: self._scripts[name](keys=keys, args=args))
        _check_status(reply)
        return reply

    async def ping(self) -> bool:
        """Whether Redis answers."""
        return bool(await self._run(self._client.ping))

    async def list_runs(self, cursor: str | None, limit: int) -> RunPage:
        """At most ``limit`` run ids, from ``cursor`` on (:mod:`service.store.listing`);
        ``BadCursor`` for a cursor not of its form."""
        return await self._run(lambda: scan_runs(self._client, cursor, limit))

    async def run_summaries(self, run_ids: list[str]) -> list[RunSummary]:
        """The listing's view of each run, in order; runs deleted meanwhile are left out."""
        fields = ["config", "version", "layout", "reported_at"]

        async def read() -> list[Any]:
            # one pipeline: one connection and one round trip per node, however long the page
            pipe = self._client.pipeline(transaction=False)
            for run_id in run_ids:
                pipe.hmget(run_keys(run_id)[0], fields)
            return list(await pipe.execute())

        out = []
        for run_id, values in zip(run_ids, await self._run(read), strict=True):
            config, version, layout, reported_at = values
            if config is None:
                continue
            out.append(
                RunSummary(
                    run_id=run_id,
                    config_json=_decode(config),
                    version=int(version or 0),
                    layout=int(layout or 1),
                    reported_at=float(reported_at) if reported_at is not None else None,
                )
            )
        return out

    async def diagnose(self) -> StoreDiagnosis:
        """Redis's version, round trip, clock, scripts and the runs' layouts
        (:mod:`service.store.diagnosis`); loads scripts Redis lacks."""
        return await self._run(lambda: diagnose(self._client, STORE_LAYOUT))

    async def load_meta(self, run_id: str) -> RunMeta:
        """The run's config, incarnation and token hash; :class:`RunNotFound` if none."""
        meta_key = run_keys(run_id)[0]
        values = await self._run(
            lambda: self._client.hmget(meta_key, ["config", "incarnation", "token_hash"])
        )
        if values[0] is None:
            raise RunNotFound("no such run")
        config, incarnation, token_hash = (_decode(v) for v in values)
        return RunMeta(config_json=config, incarnation=incarnation, token_hash=token_hash)

    async def create(
        self,
        run_id: str,
        meta: RunMeta,
        weights: np.ndarray,
        k: int,
        state: np.ndarray,
        window: int,
        prompts: int = 0,
        prompt_dists: bytes = b"",
    ) -> str | None:
        """Create the run; ``None`` when created, else the existing run's config JSON.
        ``prompts``: prompts declared in all, with their initial ``prompt_dists``."""
        args = [
            meta.config_json,
            meta.incarnation,
            meta.token_hash,
            weights.tobytes(),
            k,
            state.tobytes(),
            4 * window * k,
            prompts,
            prompt_dists,
        ]
        reply = CreateReply(*await self._script("create", run_id, args))
        if reply.status == Status.OK:
            return None
        assert reply.existing_config is not None
        return _decode(reply.existing_config)

    async def report(
        self,
        run_id: str,
        incarnation: str,
        report_id: str,
        *,
        window: int,
        packed: PackedReport,
        report_id_retention: int,
        reward_alpha: float,
        journal_entry: bytes,
        with_rewards: bool,
        step: int,
        rank: int | None,
        at: float,
        prompts: PromptWrite | None = None,
    ) -> ReportOutcome:
        """Apply one report atomically (see ``lua/report.lua``); ``at`` is now, in Unix
        seconds, recorded with ``rank``'s last report. ``prompts``: what its groups change,
        applied with it unless the prompt state moved (:class:`PromptStateMoved`)."""
        args: list[Any] = [
            incarnation,
            report_id,
            window,
            report_id_retention,
            repr(reward_alpha),
            packed.heads,
            packed.values,
            packed.rewards,
            journal_entry,
            "1" if with_rewards else "0",
            repr(at),
            rank_field(rank),
            step,
            *_prompt_args(prompts),
            prompts.flat_ids if prompts else b"",
            prompts.records if prompts else b"",
        ]
        raw = await self._script("report", run_id, args)
        if status_of(raw) == Status.CONFLICT:
            raise PromptStateMoved()
        reply = ReportReply(*raw)
        inputs = _inputs(reply)
        if reply.status == Status.OK:
            return ReportOutcome(duplicate=False, inputs=inputs)
        assert reply.weights_version is not None and reply.weights is not None
        return ReportOutcome(
            duplicate=True,
            inputs=inputs,
            weights_version=int(reply.weights_version),
            weights=unpack_f64(reply.weights),
        )

    async def read_state(
        self, run_id: str, incarnation: str, *, activity: bool = False
    ) -> RunState:
        """The run's counts, weights and reward statistics in one view; with ``activity``
        also each rank's last report and each distribution's last sampled step."""
        reply = ReadStateReply(
            *await self._script("read_state", run_id, [incarnation, "1" if activity else "0"])
        )
        inputs = _inputs(reply)
        return RunState(
            inputs=inputs,
            weights_version=int(reply.weights_version),
            weights=unpack_f64(reply.weights),
            reporters=decode_reporters(reply.ranks) if activity else None,
            last_step=decode_last_steps(reply.last_step, inputs.n.size) if activity else None,
        )

    async def set_weights(
        self,
        run_id: str,
        incarnation: str,
        version: int,
        weights: np.ndarray,
        *,
        step: int | None,
        history_entry: bytes,
        history_limit: int,
        state: np.ndarray,
    ) -> bool:
        """Store weights (and strategy state) computed at ``version`` unless newer ones are."""
        args = [
            incarnation,
            version,
            weights.tobytes(),
            "" if step is None else step,
            history_entry,
            history_limit,
            state.tobytes(),
        ]
        reply = await self._script("set_weights", run_id, args)
        return status_of(reply) == Status.OK

    async def kept_plan(
        self, run_id: str, incarnation: str, step: int, batch_size: int, round: int = 0
    ) -> bytes | None:
        """The plan fixed for ``(step, batch_size, round)`` of this incarnation of the run
        (as keys.py keeps it), in one plain ``HGET`` (no script); ``None`` when there is
        none."""
        key = run_key_bytes(run_id)[PLANS_KEY]
        field = plan_field(incarnation, step, batch_size, round).encode()
        plan: bytes | None = await self._run(lambda: self._client.hget(key, field))
        return plan

    async def get_plan(
        self,
        run_id: str,
        incarnation: str,
        step: int,
        batch_size: int,
        retention: int,
        round: int = 0,
    ) -> PlanLookup:
        """The plan fixed for ``(step, batch_size, round)``, or the current weights to draw
        it."""
        field = plan_field(incarnation, step, batch_size, round)
        args = [incarnation, field, step, retention]
        reply = GetPlanReply(*await self._script("get_plan", run_id, args))
        if reply.status == Status.EXISTS:
            return PlanLookup(plan=bytes(reply.value))
        if reply.status == Status.EXPIRED:
            raise _expired(step, int(reply.value), retention)
        assert reply.weights is not None
        return PlanLookup(
            plan=None,
            version=int(reply.value),
            weights_version=int(reply.weights_version or 0),
            weights=unpack_f64(reply.weights),
        )

    async def put_plan(
        self,
        run_id: str,
        incarnation: str,
        step: int,
        batch_size: int,
        plan: bytes,
        retention: int,
        budget_bytes: int,
        round: int = 0,
        prompts: PromptWrite | None = None,
        drawn_from: int | None = None,
    ) -> PutPlan:
        """Fix a plan (as keys.py keeps it) unless one was fixed first; returns the plan
        that holds, and whether it is this one. The oldest steps' plans are dropped while the
        kept plans would pass ``budget_bytes``; :class:`RunBudgetExceeded` when this step's
        and newer ones leave no room. ``prompts``: the prompt state after the plan, stored
        with it unless the state moved since it was read (:class:`PromptStateMoved`).
        ``drawn_from``: the version of the weights the plan was drawn from, stored only
        while they are the run's weights and fresh (:class:`WeightsMoved` otherwise, with
        the current ones); ``None`` for weights just read (no check)."""
        field = plan_field(incarnation, step, batch_size, round)
        args = [incarnation, field, step, plan, retention, budget_bytes, PLAN_ENTRY_OVERHEAD]
        args += [*_prompt_args(prompts), "" if drawn_from is None else drawn_from]
        reply = PutPlanReply(*await self._script("put_plan", run_id, args))
        if reply.status == Status.MOVED:
            assert reply.weights is not None
            raise WeightsMoved(
                PlanLookup(
                    plan=None,
                    version=int(reply.value),
                    weights_version=int(reply.weights_version or 0),
                    weights=unpack_f64(reply.weights),
                )
            )
        if reply.status == Status.CONFLICT:
            raise PromptStateMoved()
        if reply.status == Status.EXPIRED:
            raise _expired(step, int(reply.value), retention)
        if reply.status == Status.FULL:
            raise RunBudgetExceeded(
                f"no room for the plan of step {step}, batch size {batch_size}: the plans kept "
                f"for this step and newer ones take {int(reply.value)} of the "
                f"{budget_bytes} bytes a run may keep in plans (CURRICULUM_PLANS_MAX_BYTES, "
                "part of CURRICULUM_RUN_MEMORY_BUDGET_BYTES); ask fewer batch sizes or rounds "
                "per step"
            )
        return PutPlan(plan=bytes(reply.value), stored=reply.status == Status.OK)

    async def read_prompts(
        self, run_id: str, incarnation: str, flat_ids: np.ndarray | None
    ) -> PromptRead:
        """The run's prompt state: its ``prompt_dists`` and the records of ``flat_ids``
        (one byte each, in order; ``None``: every record), in one view."""
        ids = "*" if flat_ids is None else np.asarray(flat_ids, dtype="<u4").tobytes()
        reply = ReadPromptsReply(*await self._script("read_prompts", run_id, [incarnation, ids]))
        return PromptRead(
            version=_decode(reply.prompt_version),
            dists=bytes(reply.prompt_dists),
            records=bytes(reply.records),
        )

    async def delete(self, run_id: str, incarnation: str) -> None:
        """Remove the run and all its keys."""
        await self._script("delete", run_id, [incarnation])

    async def export(
        self, run_id: str, incarnation: str, *, window: int, history: bool
    ) -> RawSnapshot:
        """Everything a snapshot holds, read in one view (the history only if asked)."""
        args = [incarnation, "1" if history else "0"]
        reply = ExportReply(*await self._script("export", run_id, args))
        inputs = _inputs(reply)
        flat_ids = reply.report_ids
        report_ids = [
            (_decode(flat_ids[i]), int(float(flat_ids[i + 1]))) for i in range(0, len(flat_ids), 2)
        ]
        return RawSnapshot(
            version=inputs.version,
            n=inputs.n,
            window_mean=inputs.window_mean,
            rewards=unpack_rewards(reply.rewards),
            windows=split_windows(reply.stats, reply.windows, window),
            report_ids=report_ids,
            history=list(reply.history),
            inputs=inputs,
            prompts=bytes(reply.prompts),
            prompt_dists=bytes(reply.prompt_dists),
        )

    async def import_(
        self,
        run_id: str,
        incarnation: str,
        *,
        n: np.ndarray,
        window_mean: np.ndarray,
        rewards: np.ndarray,
        weights: np.ndarray,
        window: int,
        windows: dict[int, bytes],
        report_ids: list[tuple[str, int]],
        history: list[bytes],
        state: np.ndarray,
        prompts: bytes = b"",
        prompt_dists: bytes = b"",
    ) -> int:
        """Replace the run's learnt state (with a run's prompt records and ``prompt_dists``
        when it declares prompts); returns the new version."""
        args: list[Any] = [
            incarnation,
            pack_stats(n, window_mean, windows),
            rewards.tobytes(),
            weights.tobytes(),
            join_rings(windows, window, len(n)),
            len(report_ids),
            len(history),
            state.tobytes(),
            prompts,
            prompt_dists,
        ]
        for report_id, score in report_ids:
            args += [score, report_id]
        args += history
        reply = ImportReply(*await self._script("import", run_id, args))
        return int(reply.version)

    async def history(self, run_id: str, incarnation: str, limit: int) -> list[bytes]:
        """The newest ``limit`` history entries, oldest first."""
        reply = HistoryReply(*await self._script("history", run_id, [incarnation, limit]))
        return list(reply.entries)


def _prompt_args(prompts: PromptWrite | None) -> list[Any]:
    """The scripts' three prompt arguments: the version read, the new ``prompt_dists`` and
    the version after."""
    if prompts is None:
        return ["", b"", ""]
    return [prompts.version, prompts.dists, prompts.next_version]


def _expired(step: int, max_step: int, retention: int) -> PlanExpired:
    return PlanExpired(
        f"the plan of step {step} is no longer kept: plans are kept for the last {retention} "
        f"steps (fewer where they pass CURRICULUM_PLANS_MAX_BYTES) and the newest planned "
        f"step is {max_step}"
    )


@asynccontextmanager
async def open_store(
    url: str, *, cluster: bool = False, timeout_s: float = 5.0, max_connections: int = 100
) -> AsyncIterator[RedisStore]:
    """A store for the lifetime of the ``async with`` block."""
    store = RedisStore.from_url(
        url, cluster=cluster, timeout_s=timeout_s, max_connections=max_connections
    )
    try:
        await store.connect()
        yield store
    finally:
        await store.close()
