"""HTTP clients of the curriculum service that keep training going through outages.

:class:`CurriculumClient` (blocking, on ``httpx.Client``) and :class:`AsyncCurriculumClient`
(``httpx.AsyncClient``) have the same methods. Every request has a timeout and is retried
with exponential backoff on connection errors, timeouts and 5xx answers (a ``Retry-After``
is respected); a 4xx is never retried and raises a :class:`~trainer_client.errors.
RequestRejected` subclass carrying the status, the service's error code and message.

When the service stays unreachable, ``plan`` and ``report`` do not fail:

- ``plan`` composes the batch locally with the service's own math, from the last state the
  client fetched plus what it reported since (uniform before any state), see
  :mod:`trainer_client.fallback`; the result says ``source="local"``.
- ``report`` buffers the report (in memory, and in a JSONL file with ``buffer_path``) with
  its ``report_id``; buffered reports are replayed in order, before anything else, as soon
  as the service answers again. A report whose answer was lost keeps its id on replay, so
  the service counts it once.
- after a failure the network is left alone for a cool-down (1 s, doubling to 30 s) and
  then probed with a single attempt, so a down service costs a step almost nothing.
- one warning is logged (logger ``trainer_client``) when the outage starts and one when it
  ends, with how many buffered reports were replayed.

The other calls (``run_info``, ``history``, ``export``, ``import_``, ``delete``) need the
service and raise :class:`~trainer_client.errors.ServiceUnavailable` without it. A 4xx
raises from every call, ``plan`` and ``report`` included (a wrong token, a deleted run: no
retry can fix those), except a buffered report the service refuses on replay as invalid,
which is logged and dropped so that it cannot hold up the reports behind it.

A client is meant for one thread (or one event loop); each rank makes its own.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self

import httpx

from trainer_client.buffer import PendingReport, ReportBuffer
from trainer_client.errors import (
    CurriculumError,
    InvalidRequest,
    ServiceUnavailable,
    rejection,
)
from trainer_client.fallback import LocalScheduler, ProbeSchedule

log = logging.getLogger("trainer_client")

_SEQUENCE_MEMORY = 4096  # steps whose report count per rank is remembered


@dataclass(frozen=True)
class Plan:
    """The composition of one step's batch.

    ``assignment[i]`` is the distribution of slot ``i``; ``counts`` the slots per
    distribution (non-zero only). ``version`` is the service version the weights came from
    (for a local plan: the version of the last state fetched). ``source`` says whether the
    service made the plan or the client did, without it.
    """

    step: int
    batch_size: int
    version: int
    assignment: list[str]
    counts: dict[str, int]
    source: Literal["service", "local"]


@dataclass(frozen=True)
class ReportResult:
    """What became of a report.

    ``status`` is ``"applied"`` (counted now), ``"duplicate"`` (its ``report_id`` was counted
    before) or ``"buffered"`` (the service is unreachable; it will be replayed). ``weights``
    are the service's new weights, or the local ones for a buffered report; empty when the
    report was made with ``with_weights=False``.
    """

    status: Literal["applied", "duplicate", "buffered"]
    report_id: str
    version: int
    weights: dict[str, float]


class TokenRequired(CurriculumError):
    """The run exists already and no token was given to attach to it."""


def _new_run_id() -> str:
    return f"run-{uuid.uuid4().hex[:12]}"


class _ClientCore:
    """Everything the two clients share that is not I/O: state, bookkeeping, decisions."""

    def __init__(
        self,
        base_url: str,
        run_id: str,
        token: str | None,
        *,
        rank: int,
        retries: int,
        backoff: float,
        buffer_path: str | os.PathLike[str] | None,
        max_buffer: int,
        distributions: Sequence[str] | None,
        strategy: str | Mapping[str, Any] | None,
        seed: int,
        refresh_every: int,
        probe_initial_s: float,
        probe_max_s: float,
    ) -> None:
        if retries < 0 or backoff < 0 or refresh_every < 1 or rank < 0:
            raise ValueError("need retries >= 0, backoff >= 0, refresh_every >= 1, rank >= 0")
        self.base_url = base_url
        self.run_id = run_id
        self.token = token
        self.rank = rank
        self.retries = retries
        self.backoff = backoff
        self.refresh_every = refresh_every
        self.local = LocalScheduler()
        if distributions is not None:
            self.local.configure(distributions, strategy, seed)
        self.buffer = ReportBuffer(run_id, max_buffer, buffer_path)
        self.probe = ProbeSchedule(probe_initial_s, probe_max_s)
        self.pending_create: dict[str, Any] | None = None
        self.replayed = 0
        self._reports_since_refresh: int | None = None  # None: no state fetched yet
        self._sequence: OrderedDict[int, int] = OrderedDict()
        self._jitter = random.Random()

    # --- requests -------------------------------------------------------------------

    def run_path(self, suffix: str = "") -> str:
        return f"/v1/runs/{self.run_id}{suffix}"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def attempts(self) -> int:
        """Tries per request: one while the service is down (a probe), else 1 + retries."""
        return 1 if self.probe.down else 1 + self.retries

    def retry_delay(self, attempt: int, retry_after: str | None) -> float:
        """Seconds before retry ``attempt`` (0-based): jittered backoff, >= Retry-After."""
        delay = self.backoff * 2**attempt * self._jitter.uniform(0.5, 1.0)
        try:
            asked = float(retry_after) if retry_after is not None else 0.0
        except ValueError:  # an HTTP-date: fall back to the backoff
            asked = 0.0
        return max(delay, min(asked, self.probe.max_s))

    def answer(self, response: httpx.Response) -> Any:
        """The JSON of a non-5xx answer; a 4xx raises the matching ``RequestRejected``."""
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = None
            raise rejection(response.status_code, body)
        return response.json()

    def unavailable(self, method: str, path: str, attempts: int, last: str) -> ServiceUnavailable:
        return ServiceUnavailable(
            f"{method} {self.base_url}{path} failed after {attempts} attempt(s): {last}"
        )

    # --- health -----------------------------------------------------------------------

    def may_contact(self) -> bool:
        return self.probe.may_try(time.monotonic())

    def on_failure(self, exc: ServiceUnavailable) -> None:
        if self.probe.failed(time.monotonic()):
            log.warning(
                "curriculum service at %s unreachable (%s); scheduling locally and buffering "
                "reports until it answers",
                self.base_url,
                exc,
            )

    def on_recovery(self) -> None:
        since = self.probe.succeeded()
        if since is None:
            return
        dropped = f", {self.buffer.dropped} dropped (buffer full)" if self.buffer.dropped else ""
        log.warning(
            "curriculum service at %s reachable again after %.1f s; replayed %d buffered "
            "report(s)%s",
            self.base_url,
            time.monotonic() - since,
            self.replayed,
            dropped,
        )
        self.replayed = 0
        self.buffer.dropped = 0

    # --- state ------------------------------------------------------------------------

    def on_created(self, data: Mapping[str, Any]) -> None:
        """Take the token of a created run, or insist on one for an existing run."""
        if data["created"]:
            self.token = data["token"]
        elif self.token is None:
            raise TokenRequired(
                f"run {self.run_id!r} exists; pass its token (token=...) to attach to it"
            )
        self.pending_create = None

    def needs_refresh(self) -> bool:
        n = self._reports_since_refresh
        return n is None or n >= self.refresh_every

    def on_run(self, run: Mapping[str, Any]) -> None:
        self.local.load_run(run)
        self._reports_since_refresh = 0

    def on_snapshot(self, snapshot: Mapping[str, Any], version: int | None = None) -> None:
        self.local.load_snapshot(snapshot)
        if version is not None:
            self.local.version = version
        for item in self.buffer:  # not yet in the service's state
            self.local.add(item.advantages, item.rewards)
        self._reports_since_refresh = 0

    def on_replayed(self, item: PendingReport, error: InvalidRequest | None) -> None:
        if error is None:
            self.replayed += 1
        else:
            log.error(
                "dropping buffered report %s: the service refused it: %s", item.report_id, error
            )
        self.buffer.pop()

    # --- plans and reports --------------------------------------------------------------

    def service_plan(self, data: Mapping[str, Any]) -> Plan:
        assignment = list(data["assignment"])
        step, batch_size = int(data["step"]), int(data["batch_size"])
        self.local.remember_plan(step, batch_size, assignment)
        return Plan(
            step=step,
            batch_size=batch_size,
            version=int(data["version"]),
            assignment=assignment,
            counts={k: int(v) for k, v in data["counts"].items()},
            source="service",
        )

    def local_plan(self, step: int, batch_size: int) -> Plan:
        if batch_size < 1 or step < 0:
            raise ValueError(f"need step >= 0 and batch_size >= 1, got {step} and {batch_size}")
        assignment = self.local.plan(step, batch_size)
        counts = Counter(assignment)
        return Plan(
            step=step,
            batch_size=batch_size,
            version=self.local.version,
            assignment=assignment,
            counts={name: counts[name] for name in self.local.names or [] if counts[name]},
            source="local",
        )

    def next_report_id(self, step: int) -> str:
        """``{run}/step-{step}/rank-{rank}``, then ``.../rank-{rank}/{k}`` for the k-th repeat."""
        k = self._sequence.get(step, -1) + 1
        self._sequence[step] = k
        self._sequence.move_to_end(step)
        while len(self._sequence) > _SEQUENCE_MEMORY:
            self._sequence.popitem(last=False)
        base = f"{self.run_id}/step-{step}/rank-{self.rank}"
        return base if k == 0 else f"{base}/{k}"

    def new_report(
        self,
        step: int,
        advantages: Mapping[str, Sequence[float]],
        rewards: Mapping[str, Sequence[float]] | None,
        report_id: str | None,
    ) -> PendingReport:
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        adv, rew = self.local.validate(advantages, rewards)
        return PendingReport(
            run_id=self.run_id,
            report_id=report_id or self.next_report_id(step),
            step=step,
            advantages=adv,
            rewards=rew,
        )

    def applied(self, item: PendingReport, data: Mapping[str, Any]) -> ReportResult:
        self.local.add(item.advantages, item.rewards)
        self.local.version = int(data["version"])
        if self._reports_since_refresh is not None:
            self._reports_since_refresh += 1
        return ReportResult(
            status=data["status"],
            report_id=item.report_id,
            version=int(data["version"]),
            weights=dict(data.get("weights") or {}),
        )

    def buffered(self, item: PendingReport, with_weights: bool = True) -> ReportResult:
        self.buffer.add(item)
        self.local.add(item.advantages, item.rewards)
        return ReportResult(
            status="buffered",
            report_id=item.report_id,
            version=self.local.version,
            weights=self.local.probabilities() if with_weights and self.local.names else {},
        )

    def report_path(self, with_weights: bool) -> str:
        return self.run_path("/reports" if with_weights else "/reports?weights=false")

    def create_body(
        self, distributions: Sequence[str], strategy: str | Mapping[str, Any] | None, seed: int
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "run_id": self.run_id,
            "distributions": list(distributions),
            "seed": seed,
        }
        if strategy is not None:
            body["strategy"] = strategy if isinstance(strategy, str) else dict(strategy)
        return body


_CLIENT_DOC_ARGS = """
    ``token`` is the run's bearer token (or the operator token). ``rank`` goes into each
    report's id so that the ranks of one run never collide. ``timeout`` is per request, in
    seconds; ``retries`` extra attempts follow a failure after ``backoff * 2**i`` seconds
    (jittered). ``buffer_path`` mirrors buffered reports to a JSONL file, reloaded by the
    next client made on it; at most ``max_buffer`` reports are kept (the oldest are dropped).
    ``distributions``, ``strategy`` and ``seed`` let the client schedule locally before it
    ever reached the service (they are replaced by the service's configuration once it
    answers). The local state is refreshed from the service every ``refresh_every`` reports;
    ``probe_initial_s``/``probe_max_s`` bound the cool-down between probes of a down service.
    ``transport`` is handed to httpx (tests, proxies).
"""


class _ClientBase:
    """What the blocking and the asynchronous client share: construction and properties."""

    def __init__(
        self,
        base_url: str,
        run_id: str,
        token: str | None = None,
        *,
        rank: int = 0,
        timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.2,
        buffer_path: str | os.PathLike[str] | None = None,
        max_buffer: int = 10_000,
        transport: Any = None,
        distributions: Sequence[str] | None = None,
        strategy: str | Mapping[str, Any] | None = None,
        seed: int = 0,
        refresh_every: int = 20,
        probe_initial_s: float = 1.0,
        probe_max_s: float = 30.0,
    ) -> None:
        self._core = _ClientCore(
            base_url.rstrip("/"),
            run_id,
            token,
            rank=rank,
            retries=retries,
            backoff=backoff,
            buffer_path=buffer_path,
            max_buffer=max_buffer,
            distributions=distributions,
            strategy=strategy,
            seed=seed,
            refresh_every=refresh_every,
            probe_initial_s=probe_initial_s,
            probe_max_s=probe_max_s,
        )
        self._http = self._open_http(timeout, transport)

    def _open_http(self, timeout: float, transport: Any) -> Any:
        raise NotImplementedError

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self._core.run_id

    @property
    def token(self) -> str | None:
        """The bearer token in use (the run's own after creating it)."""
        return self._core.token

    @property
    def buffered(self) -> int:
        """Reports waiting to be replayed."""
        return len(self._core.buffer)


class CurriculumClient(_ClientBase):
    __doc__ = "Blocking client of one run of the curriculum service.\n" + _CLIENT_DOC_ARGS

    def _open_http(self, timeout: float, transport: httpx.BaseTransport | None) -> httpx.Client:
        return httpx.Client(base_url=self._core.base_url, timeout=timeout, transport=transport)

    @classmethod
    def create_or_attach(
        cls,
        base_url: str,
        distributions: Sequence[str],
        *,
        run_id: str | None = None,
        strategy: str | Mapping[str, Any] | None = None,
        seed: int = 0,
        token: str | None = None,
        **kw: Any,
    ) -> Self:
        """A client of a new run, or of the existing run ``run_id`` (same configuration).

        Creates the run (``POST /v1/runs``) and uses the token it returns; when the run
        exists, ``token`` must be its token (else :class:`TokenRequired`). A different
        configuration raises :class:`~trainer_client.errors.RunConflict`. When the service
        is unreachable, the client starts scheduling locally from this configuration and
        creates the run once the service answers (``run_id`` is generated here if absent,
        so that creation stays idempotent).
        """
        client = cls(
            base_url,
            run_id or _new_run_id(),
            token,
            distributions=distributions,
            strategy=strategy,
            seed=seed,
            **kw,
        )
        client._core.pending_create = client._core.create_body(distributions, strategy, seed)
        try:
            client._sync()
        except ServiceUnavailable as exc:
            client._core.on_failure(exc)
        except CurriculumError:
            client.close()
            raise
        return client

    def _send(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        core = self._core
        attempts = core.attempts()
        retry_after: str | None = None
        last = ""
        for attempt in range(attempts):
            if attempt:
                time.sleep(core.retry_delay(attempt - 1, retry_after))
            try:
                response = self._http.request(
                    method, path, json=body, params=params, headers=core.headers()
                )
            except httpx.TransportError as exc:
                retry_after, last = None, f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code < 500:
                return core.answer(response)
            retry_after, last = response.headers.get("Retry-After"), f"HTTP {response.status_code}"
        raise core.unavailable(method, path, attempts, last)

    def _sync(self) -> None:
        """Create the run if pending, replay the buffer in order, refresh the local state."""
        core = self._core
        if core.pending_create is not None:
            core.on_created(self._send("POST", "/v1/runs", core.pending_create))
        if core.buffer.peek() is not None:
            try:
                while (item := core.buffer.peek()) is not None:
                    try:
                        self._send("POST", core.run_path("/reports"), item.body())
                    except InvalidRequest as exc:
                        core.on_replayed(item, exc)
                    else:
                        core.on_replayed(item, None)
            finally:
                core.buffer.persist()
        if core.needs_refresh():
            core.on_run(self._send("GET", core.run_path()))

    def _online(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        *,
        required: bool,
    ) -> Any:
        """The service's answer after a sync; None (or raise, if ``required``) when down."""
        core = self._core
        if not required and not core.may_contact():
            return None
        try:
            self._sync()
            data = self._send(method, path, body, params)
        except ServiceUnavailable as exc:
            core.on_failure(exc)
            if required:
                raise
            return None
        core.on_recovery()
        return data

    def plan(self, step: int, batch_size: int) -> Plan:
        """The step's batch composition: the service's, or made locally while it is down."""
        data = self._online(
            "POST",
            self._core.run_path("/plan"),
            {"step": step, "batch_size": batch_size},
            required=False,
        )
        if data is None:
            return self._core.local_plan(step, batch_size)
        return self._core.service_plan(data)

    def report(
        self,
        step: int,
        advantages: Mapping[str, Sequence[float]],
        rewards: Mapping[str, Sequence[float]] | None = None,
        *,
        report_id: str | None = None,
        with_weights: bool = True,
    ) -> ReportResult:
        """Report a step's per-sample advantages (and rewards) by distribution.

        The ``report_id`` is ``{run}/step-{step}/rank-{rank}`` (``/{k}`` appended for this
        client's k-th further report of that step) unless given. Bad values (NaN, an
        unknown distribution) raise :class:`~trainer_client.errors.InvalidRequest` and are
        not buffered; while the service is down the report is buffered.
        ``with_weights=False`` leaves the new weights out of the answer (``weights`` is
        empty): with thousands of distributions they are most of a report's cost.
        """
        item = self._core.new_report(step, advantages, rewards, report_id)
        path = self._core.report_path(with_weights)
        data = self._online("POST", path, item.body(), required=False)
        if data is None:
            return self._core.buffered(item, with_weights)
        return self._core.applied(item, data)

    def weights(self) -> dict[str, float]:
        """The run's current sampling probabilities (computed locally while down)."""
        data = self._online("GET", self._core.run_path(), required=False)
        if data is None:
            return self._core.local.probabilities()
        self._core.on_run(data)
        return dict(data["weights"])

    def run_info(self) -> dict[str, Any]:
        """``GET /v1/runs/{run}``: config, version, weights and per-distribution stats."""
        data: dict[str, Any] = self._online("GET", self._core.run_path(), required=True)
        self._core.on_run(data)
        return data

    def history(self, limit: int | None = None) -> dict[str, Any]:
        """``GET /v1/runs/{run}/history``: weights and window means per step, oldest first."""
        params = {"limit": limit} if limit is not None else None
        data: dict[str, Any] = self._online(
            "GET", self._core.run_path("/history"), params=params, required=True
        )
        return data

    def export(self) -> dict[str, Any]:
        """A snapshot of the run's state (buffered reports are replayed first)."""
        data: dict[str, Any] = self._online("GET", self._core.run_path("/export"), required=True)
        self._core.on_snapshot(data)
        return data

    def import_(self, snapshot: Mapping[str, Any]) -> dict[str, Any]:
        """Replace the run's state with ``snapshot`` (from :meth:`export`); the answer."""
        data: dict[str, Any] = self._online(
            "PUT", self._core.run_path("/import"), dict(snapshot), required=True
        )
        self._core.on_snapshot(snapshot, version=int(data["version"]))
        return data

    def delete(self) -> None:
        """Delete the run on the service and forget its buffered reports."""
        self._core.buffer.clear()
        self._online("DELETE", self._core.run_path(), required=True)

    def close(self) -> None:
        """Close the connections (buffered reports stay in ``buffer_path``, if any)."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncCurriculumClient(_ClientBase):
    __doc__ = (
        "Asynchronous client of one run of the curriculum service: the methods of "
        ":class:`CurriculumClient`, awaited.\n" + _CLIENT_DOC_ARGS
    )

    def _open_http(
        self, timeout: float, transport: httpx.AsyncBaseTransport | None
    ) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self._core.base_url, timeout=timeout, transport=transport)

    @classmethod
    async def create_or_attach(
        cls,
        base_url: str,
        distributions: Sequence[str],
        *,
        run_id: str | None = None,
        strategy: str | Mapping[str, Any] | None = None,
        seed: int = 0,
        token: str | None = None,
        **kw: Any,
    ) -> Self:
        """See :meth:`CurriculumClient.create_or_attach`."""
        client = cls(
            base_url,
            run_id or _new_run_id(),
            token,
            distributions=distributions,
            strategy=strategy,
            seed=seed,
            **kw,
        )
        client._core.pending_create = client._core.create_body(distributions, strategy, seed)
        try:
            await client._sync()
        except ServiceUnavailable as exc:
            client._core.on_failure(exc)
        except CurriculumError:
            await client.close()
            raise
        return client

    async def _send(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        core = self._core
        attempts = core.attempts()
        retry_after: str | None = None
        last = ""
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(core.retry_delay(attempt - 1, retry_after))
            try:
                response = await self._http.request(
                    method, path, json=body, params=params, headers=core.headers()
                )
            except httpx.TransportError as exc:
                retry_after, last = None, f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code < 500:
                return core.answer(response)
            retry_after, last = response.headers.get("Retry-After"), f"HTTP {response.status_code}"
        raise core.unavailable(method, path, attempts, last)

    async def _sync(self) -> None:
        """Create the run if pending, replay the buffer in order, refresh the local state."""
        core = self._core
        if core.pending_create is not None:
            core.on_created(await self._send("POST", "/v1/runs", core.pending_create))
        if core.buffer.peek() is not None:
            try:
                while (item := core.buffer.peek()) is not None:
                    try:
                        await self._send("POST", core.run_path("/reports"), item.body())
                    except InvalidRequest as exc:
                        core.on_replayed(item, exc)
                    else:
                        core.on_replayed(item, None)
            finally:
                core.buffer.persist()
        if core.needs_refresh():
            core.on_run(await self._send("GET", core.run_path()))

    async def _online(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        *,
        required: bool,
    ) -> Any:
        """The service's answer after a sync; None (or raise, if ``required``) when down."""
        core = self._core
        if not required and not core.may_contact():
            return None
        try:
            await self._sync()
            data = await self._send(method, path, body, params)
        except ServiceUnavailable as exc:
            core.on_failure(exc)
            if required:
                raise
            return None
        core.on_recovery()
        return data

    async def plan(self, step: int, batch_size: int) -> Plan:
        """See :meth:`CurriculumClient.plan`."""
        data = await self._online(
            "POST",
            self._core.run_path("/plan"),
            {"step": step, "batch_size": batch_size},
            required=False,
        )
        if data is None:
            return self._core.local_plan(step, batch_size)
        return self._core.service_plan(data)

    async def report(
        self,
        step: int,
        advantages: Mapping[str, Sequence[float]],
        rewards: Mapping[str, Sequence[float]] | None = None,
        *,
        report_id: str | None = None,
        with_weights: bool = True,
    ) -> ReportResult:
        """See :meth:`CurriculumClient.report`."""
        item = self._core.new_report(step, advantages, rewards, report_id)
        path = self._core.report_path(with_weights)
        data = await self._online("POST", path, item.body(), required=False)
        if data is None:
            return self._core.buffered(item, with_weights)
        return self._core.applied(item, data)

    async def weights(self) -> dict[str, float]:
        """See :meth:`CurriculumClient.weights`."""
        data = await self._online("GET", self._core.run_path(), required=False)
        if data is None:
            return self._core.local.probabilities()
        self._core.on_run(data)
        return dict(data["weights"])

    async def run_info(self) -> dict[str, Any]:
        """See :meth:`CurriculumClient.run_info`."""
        data: dict[str, Any] = await self._online("GET", self._core.run_path(), required=True)
        self._core.on_run(data)
        return data

    async def history(self, limit: int | None = None) -> dict[str, Any]:
        """See :meth:`CurriculumClient.history`."""
        params = {"limit": limit} if limit is not None else None
        data: dict[str, Any] = await self._online(
            "GET", self._core.run_path("/history"), params=params, required=True
        )
        return data

    async def export(self) -> dict[str, Any]:
        """See :meth:`CurriculumClient.export`."""
        data: dict[str, Any] = await self._online(
            "GET", self._core.run_path("/export"), required=True
        )
        self._core.on_snapshot(data)
        return data

    async def import_(self, snapshot: Mapping[str, Any]) -> dict[str, Any]:
        """See :meth:`CurriculumClient.import_`."""
        data: dict[str, Any] = await self._online(
            "PUT", self._core.run_path("/import"), dict(snapshot), required=True
        )
        self._core.on_snapshot(snapshot, version=int(data["version"]))
        return data

    async def delete(self) -> None:
        """See :meth:`CurriculumClient.delete`."""
        self._core.buffer.clear()
        await self._online("DELETE", self._core.run_path(), required=True)

    async def close(self) -> None:
        """See :meth:`CurriculumClient.close`."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
