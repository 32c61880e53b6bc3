"""What each API call does: validation, authorisation, the store and the scheduling math.

Handlers stay thin by calling one method here. Run configs come from the process's
:class:`RunCache`; snapshots are converted in :mod:`service.snapshots`.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from datetime import UTC, datetime
from typing import TypeVar

import numpy as np

from curriculum_core import (
    BatchSummary,
    MissingRewards,
    RunStats,
    compose_batch,
    counts_of,
    initial_state,
    plan_rng,
    signal_of,
    strategy_to_dict,
    weights,
    window_values,
)
from curriculum_core.prompts import GroupOutcome, PromptState, plan_cost, selection_from_dict
from service.auth import digest_matches, hash_token, is_operator, new_token
from service.budget import check_run_budget, history_capacity, run_footprint
from service.errors import (
    Forbidden,
    InvalidInput,
    PromptStateBusy,
    RunConflict,
    RunNotFound,
    StaleRun,
    Unauthorized,
)
from service.metrics import Metrics
from service.off_loop import OffLoop
from service.prompt_state import (
    MAX_ATTEMPTS,
    check_prompts,
    group_outcomes,
    imported_prompt_state,
    outcome_flat_ids,
    plan_write,
    prompt_diagnostics,
    read_prompt_state,
    report_write,
    report_write_from,
)
from service.report_gate import ReportGate
from service.run_cache import Run, RunCache, config_json, stored_strategy
from service.run_state_cache import RunStateCache, Turns
from service.run_view import drawn_plan_answer, plan_answer, run_out
from service.schemas import (
    CreateRunRequest,
    CreateRunResponse,
    HistoryOut,
    ImportOut,
    ReportOut,
    ReportRequest,
    Snapshot,
)
from service.settings import Settings
from service.snapshots import history_point, imported_state, snapshot_of
from service.store.codec import (
    HistoryEntry,
    KeptPlan,
    PackedReport,
    encode_history,
    encode_journal_body,
    encode_plan,
    pack_prompt_dists,
    pack_report,
)
from service.store.redis_store import (
    PlanLookup,
    PromptRead,
    PromptStateMoved,
    PromptWrite,
    RedisStore,
    RunMeta,
    RunState,
    StrategyInputs,
    WeightsMoved,
)

T = TypeVar("T")

MAX_WINDOWS_BYTES = 256 * 2**20
"""The most a run's windows may take in Redis (one string; Redis caps a string at 512 MiB)."""


def _denied(run_id: str) -> Forbidden:
    """What a token that is not the operator's learns of a run it does not grant, whether the
    run exists or not: the same answer, so no token can probe which run ids are taken."""
    return Forbidden(
        f"this token grants no run {run_id!r}: it is another run's or unknown, or the run "
        "does not exist (any more)"
    )


def _grants(digest: str, operator: bool, token_hash: str | None) -> bool:
    """Whether a token (``digest``, or the operator's) grants the run of ``token_hash``
    (``None``: there is no run). The digests are compared either way."""
    return digest_matches(digest, token_hash) or (operator and token_hash is not None)


class RunService:
    """The service's operations on runs."""

    def __init__(
        self, store: RedisStore, settings: Settings, metrics: Metrics, off_loop: OffLoop
    ) -> None:
        self._store = store
        self._settings = settings
        self._metrics = metrics
        self._off_loop = off_loop
        self._report_gate = ReportGate(
            settings.large_report_bytes, settings.large_report_slots, settings.large_report_wait_s
        )
        self._cache = RunCache(store, settings.config_cache_size, settings.reward_ema_alpha)
        self._seen = RunStateCache(settings.state_cache_bytes)
        self._prompt_turns = Turns()
        self._plans_kept = metrics.plans.labels(source="kept")
        self._plans_drawn = metrics.plans.labels(source="drawn")
        self._reports_applied = metrics.reports.labels(status="applied")
        self._reports_duplicate = metrics.reports.labels(status="duplicate")
        admin = settings.admin_token
        self._admin_token = admin.get_secret_value() if admin else None

    # -- runs and tokens ---------------------------------------------------------------

    async def _authorized(self, run_id: str, token: str) -> Run:
        """The run ``token`` grants: the 403 of :func:`_denied` if none (the operator gets
        the 404 of a missing run).

        A refusal costs the same whether the run exists or not, so that no token can time
        which ids are taken: the token is hashed once and compared with the cached run's
        digest (a dummy's when none is cached); past that, the run's meta is read from the
        store (one lookup, which also finds the token of a run recreated by another
        replica) and compared once more (with a dummy's when there is no run).
        """
        operator = is_operator(token, self._admin_token)
        digest = hash_token(token)
        cached = self._cache.cached(run_id)
        if _grants(digest, operator, cached.token_hash if cached else None) and cached:
            return cached
        meta = await self._cache.stored_meta(run_id)
        if _grants(digest, operator, meta.token_hash if meta else None) and meta:
            return self._cache.keep(run_id, meta)
        if operator and meta is None:
            raise RunNotFound(f"no run with id {run_id!r}")
        raise _denied(run_id)

    async def _may_read(self, run_id: str, token: str | None) -> bool:
        """Whether ``token`` may read the run as it is stored now (no error if it is gone)."""
        if token is None:
            return False
        if is_operator(token, self._admin_token):
            return True
        try:
            meta = await self._store.load_meta(run_id)
        except RunNotFound:
            return False
        return digest_matches(hash_token(token), meta.token_hash)

    async def _with_run(
        self, run_id: str, token: str | None, action: Callable[[Run], Awaitable[T]]
    ) -> T:
        """Run ``action`` on the authorised run, reloading once if it was recreated.

        A run that does not exist is a 404 for the operator only; any other token gets the
        403 of a run it does not grant, so no token can find out which run ids are taken.
        """
        if token is None:
            raise Unauthorized("this call needs 'Authorization: Bearer <token>'")
        try:
            for attempt in range(2):
                run = await self._authorized(run_id, token)
                try:
                    return await action(run)
                except StaleRun:
                    self._cache.drop(run_id)
                    if attempt == 1:
                        raise
                except RunNotFound:
                    self._cache.drop(run_id)
                    raise RunNotFound(f"no run with id {run_id!r}") from None
        except RunNotFound:
            if is_operator(token, self._admin_token):
                raise
            raise _denied(run_id) from None
        raise AssertionError("unreachable")

    async def create(self, request: CreateRunRequest, token: str | None) -> CreateRunResponse:
        """Create a run, or acknowledge one that exists with the same configuration."""
        if self._admin_token is not None:
            if token is None:
                raise Unauthorized("creating a run on this deployment needs the operator token")
            if not is_operator(token, self._admin_token):
                raise Forbidden("creating a run on this deployment needs the operator token")
        names = list(request.distributions)
        if len(names) > self._settings.max_distributions:
            raise InvalidInput(
                f"a run may have at most {self._settings.max_distributions} distributions, "
                f"got {len(names)}"
            )
        strategy = request.parsed_strategy()
        windows_bytes = len(names) * 4 * strategy.window
        if windows_bytes > MAX_WINDOWS_BYTES:
            raise InvalidInput(
                f"{len(names)} distributions with a window of {strategy.window} would keep "
                f"{windows_bytes / 2**20:.0f} MiB of advantages in Redis; a run may keep at "
                f"most {MAX_WINDOWS_BYTES // 2**20} MiB: use a smaller window"
            )
        selection_params = request.prompt_selection
        prompts = check_prompts(
            names, request.prompts, selection_params is not None, self._settings.max_prompts
        )
        selection = None
        if request.prompts is not None:
            raw = selection_params.model_dump(exclude_unset=True) if selection_params else {}
            try:
                selection = selection_from_dict(raw)
            except ValueError as exc:
                raise InvalidInput(f"prompt_selection: {exc}") from None
        run_id = request.run_id or f"run-{secrets.token_hex(8)}"
        created_at = datetime.now(UTC).isoformat(timespec="seconds")
        run_token = new_token()
        meta = RunMeta(
            config_json=config_json(
                names, strategy, request.seed, created_at, request.prompts, selection
            ),
            incarnation=secrets.token_hex(8),
            token_hash=hash_token(run_token),
        )
        state = initial_state(strategy, len(names))
        footprint = run_footprint(
            self._settings,
            k=len(names),
            window=strategy.window,
            config_bytes=len(meta.config_json.encode()),
            state_bytes=8 * state.size,
            stateful=strategy.stateful,
            prompts=prompts,
        )
        check_run_budget(self._settings, footprint)
        initial = weights(strategy, RunStats.empty(len(names)), state)
        dists = b""
        if request.prompts is not None:
            dists = pack_prompt_dists(PromptState.initial([request.prompts[n] for n in names]))
        existing = await self._store.create(
            run_id, meta, initial, len(names), state, strategy.window, prompts, dists
        )
        if existing is None:
            run = Run.from_meta(run_id, meta, self._settings.reward_ema_alpha)
            return CreateRunResponse(
                run_id=run_id, created=True, token=run_token, version=0, config=run.config_out()
            )
        current = json.loads(existing)
        legacy = self._settings.reward_ema_alpha
        current["strategy"] = strategy_to_dict(stored_strategy(current["strategy"], legacy))
        asked = json.loads(meta.config_json)
        compared = ("distributions", "strategy", "seed", "prompts", "prompt_selection")
        if any(current.get(f) != asked.get(f) for f in compared):
            message = (
                f"run {run_id!r} exists with another configuration; delete it first or "
                "choose another run_id"
            )
            if await self._may_read(run_id, token):
                raise RunConflict(message, details={f: current[f] for f in ("strategy", "seed")})
            raise RunConflict(
                message + " (its configuration is shown only to its own token or the operator's)"
            )
        self._cache.drop(run_id)
        run = await self._cache.load(run_id)
        state = await self._store.read_state(run_id, run.incarnation)
        return CreateRunResponse(
            run_id=run_id,
            created=False,
            token=None,
            version=state.inputs.version,
            config=run.config_out(),
        )

    async def delete(self, run_id: str, token: str | None) -> None:
        """Remove the run and all its keys."""

        async def action(run: Run) -> None:
            await self._store.delete(run_id, run.incarnation)
            self._cache.drop(run_id)
            self._seen.drop(run_id)

        await self._with_run(run_id, token, action)

    def _history_limit(self, k: int) -> int:
        return history_capacity(self._settings, k)

    # -- weights -------------------------------------------------------------------------

    async def _store_weights(
        self, run: Run, inputs: StrategyInputs, step: int | None
    ) -> np.ndarray:
        """Compute the weights of ``inputs`` and store them unless newer ones are stored."""
        stats, state = run.strategy_view(inputs)
        w = weights(run.strategy, stats, state)
        entry = encode_history(
            HistoryEntry(
                step=step or 0, version=inputs.version, weights=w, window_mean=stats.window_mean
            )
        )
        stored = await self._store.set_weights(
            run.run_id,
            run.incarnation,
            inputs.version,
            w,
            step=step,
            history_entry=entry,
            history_limit=self._history_limit(run.k),
            state=state if run.strategy.stateful else np.zeros(0),
        )
        if stored:
            self._seen.keep_weights(run, inputs.version, w)
        return w

    async def _fresh_weights(self, run: Run) -> tuple[int, np.ndarray]:
        """Weights of the current state, recomputing them if a writer died before storing."""
        state = await self._store.read_state(run.run_id, run.incarnation)
        if state.weights_version >= state.inputs.version:
            self._seen.keep_weights(run, state.weights_version, state.weights)
            return state.weights_version, state.weights
        return state.inputs.version, await self._store_weights(run, state.inputs, None)

    async def _current_weights(self, run: Run, found: PlanLookup) -> tuple[int, np.ndarray]:
        """The weights to draw a plan from, from what ``get_plan`` (or a ``put_plan`` that
        found the weights moved) read: those, or recomputed if a writer died before storing
        the newest."""
        assert found.weights is not None
        if found.weights_version < found.version:
            return await self._fresh_weights(run)
        self._seen.keep_weights(run, found.weights_version, found.weights)
        return found.weights_version, found.weights

    # -- reports -------------------------------------------------------------------------

    def _encode_report(self, run: Run, request: ReportRequest) -> PackedReport:
        if request.rank is not None and request.rank >= self._settings.max_ranks:
            raise InvalidInput(
                f"rank must be below {self._settings.max_ranks} (CURRICULUM_MAX_RANKS: each "
                f"rank's last report is kept for the run's activity), got {request.rank}"
            )
        rewards = request.rewards or {}
        named = len(request.advantages.keys() | rewards.keys())
        if named > self._settings.max_report_distributions:
            raise InvalidInput(
                f"a report may name at most {self._settings.max_report_distributions} "
                f"distributions (CURRICULUM_MAX_REPORT_DISTRIBUTIONS), got {named}; split "
                "it into several reports"
            )
        total = sum(len(v) for v in request.advantages.values())
        total += sum(len(v) for v in rewards.values())
        total += sum(len(g.rewards) for g in request.groups or ())
        if total > self._settings.max_report_values:
            raise InvalidInput(
                f"a report may carry at most {self._settings.max_report_values} numbers, "
                f"got {total}; split it into several reports"
            )
        try:
            values = window_values(signal_of(run.strategy), request.advantages, rewards)
        except MissingRewards as exc:
            raise InvalidInput(str(exc)) from None
        return pack_report(
            [(run.index_of(name), v) for name, v in values.items() if v],
            [(run.index_of(name), v) for name, v in rewards.items() if v],
            run.strategy.window,
        )

    def _prepare_report(
        self, run: Run, request: ReportRequest
    ) -> tuple[PackedReport, bytes, list[GroupOutcome]]:
        """The report's values packed for the script, its journal entry and its groups'
        outcomes (all checked before any write)."""
        packed = self._encode_report(run, request)
        outcomes = group_outcomes(run, request.groups or [], self._settings.max_report_groups)
        return packed, self._journal_entry(run, request), outcomes

    def _journal_entry(self, run: Run, request: ReportRequest) -> bytes:
        """The report's summary for a stateful strategy's journal (empty for the others)."""
        if not run.strategy.stateful:
            return b""
        summary = BatchSummary.of_report(
            {run.index_of(n): v for n, v in request.advantages.items()},
            {run.index_of(n): v for n, v in (request.rewards or {}).items()},
        )
        return encode_journal_body(summary)

    @asynccontextmanager
    async def admitted_report(
        self, run_id: str, token: str | None, body_bytes: int
    ) -> AsyncIterator[None]:
        """Admission of a report body of ``body_bytes`` to be parsed and applied inside.

        A large one is authorised first (so that no other caller can take its run's turn)
        and then waits for a slot of :class:`ReportGate`: 429 ``reports_busy`` if its run
        has one in progress or none frees up in time."""
        if body_bytes >= self._report_gate.large_bytes:
            await self._with_run(run_id, token, _found)
        async with self._report_gate.admit(run_id, body_bytes):
            yield

    async def report(
        self, run_id: str, token: str | None, request: ReportRequest, *, with_weights: bool = True
    ) -> ReportOut:
        """Apply a report (once per ``report_id``) and return the weights after it (none
        unless ``with_weights``; they are computed and stored all the same)."""

        values = sum(len(v) for v in request.advantages.values())
        values += sum(len(v) for v in (request.rewards or {}).values())
        values += len(request.groups or ())

        async def action(run: Run) -> ReportOut:
            packed, journal_entry, groups = await self._off_loop.run(
                values, self._prepare_report, run, request
            )
            for _ in range(MAX_ATTEMPTS):
                async with self._prompt_turn(run, bool(groups)):
                    prompts, after = None, None
                    if groups:
                        prompts, after = await self._report_prompts(run, groups)
                    try:
                        outcome = await self._store.report(
                            run_id,
                            run.incarnation,
                            request.report_id,
                            window=run.strategy.window,
                            packed=packed,
                            report_id_retention=self._settings.report_id_retention,
                            reward_alpha=run.strategy.reward_alpha,
                            journal_entry=journal_entry,
                            with_rewards=run.strategy.reads_rewards,
                            step=request.step,
                            rank=request.rank,
                            at=time.time(),
                            prompts=prompts,
                        )
                    except PromptStateMoved:
                        self._seen.drop_prompts(run)
                        continue
                    if not outcome.duplicate and prompts is not None and after is not None:
                        self._seen.keep_prompts(run, prompts.next_version, after)
                    break
            else:
                raise _prompts_busy()
            inputs = outcome.inputs
            if not outcome.duplicate:
                self._reports_applied.inc()
                w = await self._store_weights(run, inputs, request.step)
                named = run.named(w) if with_weights else None
                return _report_out("applied", inputs.version, named)
            self._reports_duplicate.inc()
            assert outcome.weights is not None and outcome.weights_version is not None
            w = outcome.weights
            if outcome.weights_version < inputs.version:
                w = await self._store_weights(run, inputs, None)
            return _report_out("duplicate", inputs.version, run.named(w) if with_weights else None)

        return await self._with_run(run_id, token, action)

    # -- plans ---------------------------------------------------------------------------

    async def plan(
        self, run_id: str, token: str | None, step: int, batch_size: int, round: int = 0
    ) -> bytes:
        """The composition of generation round ``round`` of step ``step``'s batch, fixed by
        the first request for it, as the JSON of a :class:`PlanOut`.

        The plan is kept as its counts (keys.py), so every later request for the step (the
        other ranks) is one Redis call and the assignment rebuilt from the run's seed.
        """
        if batch_size > self._settings.max_batch_size:
            raise InvalidInput(
                f"batch_size must be at most {self._settings.max_batch_size}, got {batch_size}"
            )
        if round >= self._settings.max_rounds:
            raise InvalidInput(
                f"round must be below {self._settings.max_rounds} (CURRICULUM_MAX_ROUNDS), "
                f"got {round}"
            )

        async def action(run: Run) -> bytes:
            # A step above every one this process has seen planned is most likely new: drawn
            # at once from the weights seen last (put_plan checks they are current). Others
            # (the other ranks of a step) read the kept plan first, one HGET.
            if step <= self._seen.planned(run) or self._seen.weights(run) is None:
                kept = await self._store.kept_plan(run_id, run.incarnation, step, batch_size, round)
                if kept is not None:
                    self._seen.saw_plan(run, step)
                    return await self._kept_answer(run, step, batch_size, kept, round)
            self._seen.saw_plan(run, step)
            return await self._draw(run, step, batch_size, round)

        return await self._with_run(run_id, token, action)

    async def _kept_answer(
        self, run: Run, step: int, batch_size: int, kept: bytes, round: int
    ) -> bytes:
        self._plans_kept.inc()
        return await self._off_loop.run(
            batch_size, plan_answer, run, step, batch_size, kept, round=round
        )

    async def _draw(self, run: Run, step: int, batch_size: int, round: int) -> bytes:
        """Draw the plan of ``(step, batch_size, round)`` and fix it, unless another caller
        fixed it first (then that one is the answer)."""
        retention = self._settings.plan_retention
        seen = self._seen.weights(run)
        drawn_from: int | None = None
        if seen is None:
            found = await self._store.get_plan(
                run.run_id, run.incarnation, step, batch_size, retention, round
            )
            if found.plan is not None:
                return await self._kept_answer(run, step, batch_size, found.plan, round)
            version, w = await self._current_weights(run, found)
        else:
            version, w = seen
            drawn_from = version
        for _ in range(MAX_ATTEMPTS):
            picks = compose_batch(w, batch_size, plan_rng(run.seed, step, batch_size, round))
            counts = counts_of(picks, run.k)
            index = np.flatnonzero(counts)
            plan = KeptPlan(version=version, index=index, count=counts[index])
            prompts = None
            if run.prompt_counts is not None:
                plan, prompts = await self._plan_prompts(run, step, batch_size, picks, plan, round)
            try:
                put = await self._store.put_plan(
                    run.run_id,
                    run.incarnation,
                    step,
                    batch_size,
                    encode_plan(plan),
                    retention,
                    self._settings.plans_max_bytes,
                    round,
                    prompts,
                    drawn_from,
                )
            except WeightsMoved as moved:
                self._forget_prompts(run, prompts)
                version, w = await self._current_weights(run, moved.current)
                drawn_from = None
                continue
            except PromptStateMoved:
                self._seen.drop_prompts(run)
                continue
            except BaseException:
                self._forget_prompts(run, prompts)
                raise
            if not put.stored:
                self._forget_prompts(run, prompts)
                return await self._kept_answer(run, step, batch_size, put.plan, round)
            self._plans_drawn.inc()
            return await self._off_loop.run(
                batch_size, drawn_plan_answer, run, step, batch_size, plan, picks, round
            )
        raise _prompts_busy()

    async def _plan_prompts(
        self, run: Run, step: int, batch_size: int, picks: np.ndarray, plan: KeptPlan, round: int
    ) -> tuple[KeptPlan, PromptWrite]:
        """The plan with its prompts, and its write of the prompt state.

        Computed in the run's turn from the state this process saw last, which it then
        replaces with the state after this plan: the next plan of the run in this process
        draws from that at once, without waiting for this one to be stored (the script
        checks the version either way; if this one is not stored, :meth:`_forget_prompts`
        drops the state, and a plan drawn from it finds the prompt state moved)."""
        async with self._prompt_turns.turn(run.run_id):
            version, state = await self._prompt_state(run)
            size = plan_cost(state, picks, run.seed)
            plan, write, after = await self._off_loop.run(
                size, plan_write, run, step, batch_size, picks, plan, version, state, round
            )
            self._seen.keep_prompts(run, write.next_version, after)
        return plan, write

    def _forget_prompts(self, run: Run, write: PromptWrite | None) -> None:
        """A plan's write of the prompt state was not stored: the state kept after it (and
        any drawn from that since) is not the run's."""
        if write is not None:
            self._seen.drop_prompts(run)

    def _prompt_turn(self, run: Run, changes_prompts: bool) -> AbstractAsyncContextManager[None]:
        """The run's turn to compute and write a change of its prompt state in this process
        (none needed when the call changes none): concurrent plans and reports of one run
        would each compute from the same state, and all but the first find it moved."""
        return self._prompt_turns.turn(run.run_id) if changes_prompts else nullcontext()

    async def _prompt_state(self, run: Run) -> tuple[str, PromptState]:
        """The run's whole prompt state and its ``meta.prompt_version``: as this process saw
        it last, or read."""
        seen = self._seen.prompts(run)
        if seen is not None:
            return seen
        read = await self._store.read_prompts(run.run_id, run.incarnation, None)
        state = read_prompt_state(run, read)
        self._seen.keep_prompts(run, read.version, state)
        return read.version, state

    async def _report_prompts(
        self, run: Run, groups: list[GroupOutcome]
    ) -> tuple[PromptWrite, PromptState | None]:
        """What a report's groups change in the prompt state, and the whole state after it
        when this process has the whole state before it (else only their prompts' records
        are read, and the state after is not known)."""
        seen = self._seen.prompts(run)
        if seen is not None:
            return report_write_from(run, groups, *seen)
        ids = outcome_flat_ids(run, groups)
        read = await self._store.read_prompts(run.run_id, run.incarnation, ids)
        return report_write(run, groups, read), None

    # -- reading -------------------------------------------------------------------------

    async def get(
        self, run_id: str, token: str | None, offset: int = 0, limit: int | None = None
    ) -> bytes:
        """The run's configuration, weights and per-distribution statistics, as the JSON of
        a :class:`RunOut` (rendered off the loop for large runs), for the ``limit``
        distributions from ``offset`` (``run_page_limit`` when no limit is given)."""
        limit = self._settings.run_page_limit if limit is None else limit
        if limit > self._settings.run_page_max_limit:
            raise InvalidInput(
                f"limit {limit} is over the most distributions one page may hold "
                f"({self._settings.run_page_max_limit}); ask for the rest with offset"
            )

        def render(
            run: Run, state: RunState, w: np.ndarray, page: slice, prompts: PromptRead | None
        ) -> bytes:
            stats, strategy_state = run.strategy_view(state.inputs)
            out = run_out(run, state, stats, strategy_state, w, page)
            if prompts is not None:
                out.prompts = prompt_diagnostics(run, prompts, page)
            return out.model_dump_json().encode()

        async def action(run: Run) -> bytes:
            start = min(offset, run.k)  # past the run: an empty last page
            page = slice(start, min(start + limit, run.k))
            state = await self._store.read_state(run_id, run.incarnation, activity=True)
            w = state.weights
            if state.weights_version < state.inputs.version:
                w = await self._store_weights(run, state.inputs, None)
            prompts = None
            if run.prompt_counts is not None:
                no_ids = np.zeros(0, dtype=np.int64)
                prompts = await self._store.read_prompts(run_id, run.incarnation, no_ids)
            return await self._off_loop.run(run.k, render, run, state, w, page, prompts)

        return await self._with_run(run_id, token, action)

    async def history(self, run_id: str, token: str | None, limit: int | None) -> HistoryOut:
        """The weights and window means of the last ``limit`` steps, oldest first."""
        limit = self._settings.history_limit if limit is None else limit

        async def action(run: Run) -> HistoryOut:
            blobs = await self._store.history(run_id, run.incarnation, limit)
            entries = [history_point(b) for b in blobs]
            return HistoryOut(run_id=run_id, distributions=list(run.distributions), entries=entries)

        return await self._with_run(run_id, token, action)

    # -- snapshots -----------------------------------------------------------------------

    async def export(
        self, run_id: str, token: str | None, *, include_history: bool = True
    ) -> Snapshot:
        """Everything the run has learnt, to save beside a trainer checkpoint."""

        async def action(run: Run) -> Snapshot:
            raw = await self._store.export(
                run_id, run.incarnation, window=run.strategy.window, history=include_history
            )
            return snapshot_of(run, raw)

        return await self._with_run(run_id, token, action)

    async def import_(self, run_id: str, token: str | None, snapshot: Snapshot) -> ImportOut:
        """Replace the run's learnt state with a snapshot's."""

        async def action(run: Run) -> ImportOut:
            imported = imported_state(run, snapshot, self._history_limit(run.k))
            records, dists = imported_prompt_state(run, snapshot)
            version = await self._store.import_(
                run_id,
                run.incarnation,
                n=imported.n,
                window_mean=imported.window_mean,
                rewards=imported.rewards,
                weights=imported.weights,
                window=run.strategy.window,
                windows=imported.windows,
                report_ids=snapshot.report_ids[-self._settings.report_id_retention :],
                history=imported.history,
                state=imported.state,
                prompts=records,
                prompt_dists=dists,
            )
            return ImportOut(run_id=run_id, version=version, weights=run.named(imported.weights))

        return await self._with_run(run_id, token, action)


def _prompts_busy() -> PromptStateBusy:
    return PromptStateBusy(
        f"other plans and reports of this run moved its prompt state {MAX_ATTEMPTS} times "
        "while this call computed its change; nothing was written: retry shortly"
    )


async def _found(run: Run) -> Run:
    """The run itself: the action of a call that only checks the caller may write it."""
    return run


def _report_out(status: str, version: int, weights: dict[str, float] | None) -> ReportOut:
    """A report's answer, built from values the service computed itself: no validation pass
    over the K weights (a millisecond at K = 10,000)."""
    return ReportOut.model_construct(status=status, version=version, weights=weights)
