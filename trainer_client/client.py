"""HTTP clients of the curriculum service that keep training going through outages.

:class:`CurriculumClient` (blocking, on ``httpx.Client``) and :class:`AsyncCurriculumClient`
(``httpx.AsyncClient``) have the same methods. Both are thin drivers of the flows of
:mod:`trainer_client.protocol`, where every call is written once. Every request has a
timeout and is retried with exponential backoff on connection errors, timeouts, 5xx and
429 answers (a ``Retry-After`` is respected); another 4xx is never retried and raises a
:class:`~trainer_client.errors.RequestRejected` subclass carrying the status, the service's
error code and message.

When the service stays unreachable, nothing a training loop calls fails:

- ``plan`` composes the batch locally with the service's own math
  (:class:`curriculum_core.RunModel`) from the last state the client fetched plus every
  report it made since (a stateful strategy goes on from the state it had); the result says
  ``source="local"``.
- ``report`` buffers the report (in memory, and in a JSONL file with ``buffer_path``) with
  its ``report_id``; what is owed (the run's creation, an import, reports) is replayed in
  order, before anything else, as soon as the service answers again. A report whose answer
  was lost keeps its id on replay, so the service counts it once.
- ``checkpoint`` returns the local state and the reports still owed, and ``restore``
  queues the import of a checkpoint for when the service is back.
- after a failure the network is left alone for a cool-down (1 s, doubling to 30 s) and
  then probed with a single attempt, so a down service costs a step almost nothing.
- one warning is logged (logger ``trainer_client``) when the outage starts and one when it
  ends, with how many buffered calls were replayed.

The other calls (``run_info``, ``history``, ``export``, ``import_``, ``delete``) need the
service and raise :class:`~trainer_client.errors.ServiceUnavailable` without it. A 4xx
raises from every call, ``plan`` and ``report`` included (a wrong token, a deleted run: no
retry can fix those), except a buffered report the service refuses on replay as invalid,
which is logged and dropped so that it cannot hold up the reports behind it.

A client is meant for one thread (or one event loop); each rank makes its own.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from trainer_client.buffer import ReportBuffer
from trainer_client.errors import CurriculumError
from trainer_client.protocol import (
    ClientProtocol,
    Flow,
    Groups,
    Plan,
    ReportResult,
    Send,
    TokenRequired,
    Wait,
    parse_base_urls,
)

T = TypeVar("T")

__all__ = ["AsyncCurriculumClient", "CurriculumClient", "Plan", "ReportResult", "TokenRequired"]


def _new_run_id() -> str:
    return f"run-{uuid.uuid4().hex[:12]}"


def _create_body(
    run_id: str,
    distributions: Sequence[str],
    strategy: str | Mapping[str, Any] | None,
    seed: int,
    prompts: Mapping[str, int] | None = None,
    prompt_selection: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"run_id": run_id, "distributions": list(distributions), "seed": seed}
    if strategy is not None:
        body["strategy"] = strategy if isinstance(strategy, str) else dict(strategy)
    if prompts is not None:
        body["prompts"] = dict(prompts)
    if prompt_selection is not None:
        body["prompt_selection"] = dict(prompt_selection)
    return body


_CLIENT_DOC_ARGS = """
    ``base_url`` is the service's URL, or several replicas' (a list, or one string with commas):
    a connection failure or a 5xx moves a request on to the next replica at once, and the
    service counts as down only when none answers (a retried report keeps its id, so no replica
    counts it twice). ``token`` is the run's bearer token (or the operator token). ``rank`` goes
    into each report's id so that the ranks of one run never collide. ``timeout`` is per
    request, in seconds; ``retries`` extra rounds over the replicas follow a failure after
    ``backoff * 2**i`` seconds (jittered). ``buffer_path`` mirrors what is owed to the service
    to a JSONL file, reloaded by the next client made on it; at most ``max_buffer`` reports are
    kept (the oldest are dropped). ``distributions``, ``strategy`` and ``seed`` let the client
    schedule locally before it ever reached the service (they are replaced by the service's
    configuration once it answers); so do ``prompts`` (every distribution's prompt count:
    plans then name each slot's prompt, offline too) and ``prompt_selection``. When the
    service's state moves in ways this client did not see (other ranks), the local state is
    refreshed from it at most every ``refresh_every`` reports; ``probe_initial_s`` and
    ``probe_max_s`` bound the cool-down between probes of a down service. ``transport`` is
    handed to httpx (tests, proxies).
"""


class _ClientBase:
    """What the blocking and the asynchronous client share: construction and properties."""

    def __init__(
        self,
        base_url: str | Sequence[str],
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
        prompts: Mapping[str, int] | None = None,
        prompt_selection: Mapping[str, Any] | None = None,
    ) -> None:
        self._proto = ClientProtocol(
            parse_base_urls(base_url),
            run_id,
            token,
            rank=rank,
            retries=retries,
            backoff=backoff,
            buffer=ReportBuffer(run_id, max_buffer, buffer_path),
            distributions=distributions,
            strategy=strategy,
            seed=seed,
            refresh_every=refresh_every,
            probe_initial_s=probe_initial_s,
            probe_max_s=probe_max_s,
            prompts=prompts,
            prompt_selection=prompt_selection,
        )
        self._http = self._open_http(timeout, transport)

    def _open_http(self, timeout: float, transport: Any) -> Any:
        raise NotImplementedError

    @classmethod
    def _for_new_run(
        cls,
        base_url: str | Sequence[str],
        distributions: Sequence[str],
        run_id: str | None,
        strategy: str | Mapping[str, Any] | None,
        seed: int,
        token: str | None,
        kw: dict[str, Any],
    ) -> Self:
        run_id = run_id or _new_run_id()
        client = cls(
            base_url,
            run_id,
            token,
            distributions=distributions,
            strategy=strategy,
            seed=seed,
            **kw,
        )
        body = _create_body(
            run_id,
            distributions,
            strategy,
            seed,
            kw.get("prompts"),
            kw.get("prompt_selection"),
        )
        client._proto.owe_creation(body)
        return client

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self._proto.run_id

    @property
    def base_urls(self) -> list[str]:
        """The replicas' base URLs, in the order they are tried."""
        return list(self._proto.base_urls)

    @property
    def token(self) -> str | None:
        """The bearer token in use (the run's own after creating it)."""
        return self._proto.token

    @property
    def buffered(self) -> int:
        """Calls waiting to be replayed (the run's creation, an import, reports)."""
        return len(self._proto.buffer)

    @property
    def buffer_path(self) -> str | None:
        """The file that mirrors what is owed to the service, if any."""
        path = self._proto.buffer.path
        return str(path) if path is not None else None

    @property
    def online(self) -> bool:
        """Whether the last attempt to reach the service succeeded."""
        return not self._proto.probe.down


class CurriculumClient(_ClientBase):
    __doc__ = "Blocking client of one run of the curriculum service.\n" + _CLIENT_DOC_ARGS

    def _open_http(self, timeout: float, transport: httpx.BaseTransport | None) -> httpx.Client:
        return httpx.Client(timeout=timeout, transport=transport)

    def _run(self, flow: Flow[T]) -> T:
        """Drive ``flow`` to its end with blocking I/O."""
        reply: Any = None
        try:
            while True:
                command = flow.send(reply)
                if isinstance(command, Wait):
                    time.sleep(command.seconds)
                    reply = None
                    continue
                reply = self._send(command)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    def _send(self, command: Send) -> httpx.Response | httpx.TransportError:
        try:
            return self._http.request(
                command.method,
                command.base_url + command.path,
                json=command.body,
                params=command.params,
                headers=command.headers,
            )
        except httpx.TransportError as exc:
            return exc

    @classmethod
    def create_or_attach(
        cls,
        base_url: str | Sequence[str],
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
        client = cls._for_new_run(base_url, distributions, run_id, strategy, seed, token, kw)
        try:
            client._run(client._proto.attach())
        except CurriculumError:
            client.close()
            raise
        return client

    def plan(self, step: int, batch_size: int, round: int = 0) -> Plan:
        """The step's batch composition: the service's, or made locally while it is down.
        ``round`` > 0 asks for a further batch of the same step (a refill after a filter
        dropped groups): each round is fixed by its first request, like the step's."""
        return self._run(self._proto.plan(step, batch_size, round))

    def report(
        self,
        step: int,
        advantages: Mapping[str, Sequence[float]],
        rewards: Mapping[str, Sequence[float]] | None = None,
        *,
        filtered: Groups | None = None,
        report_id: str | None = None,
        with_weights: bool = True,
        groups: Sequence[Mapping[str, Any]] | None = None,
    ) -> ReportResult:
        """Report a step's per-sample advantages (and rewards) by distribution.

        ``step`` is the step whose plan generated the samples (in an asynchronous loop, not
        the step that trains them). ``filtered`` holds, per distribution, the rewards of
        each group a filter dropped (``{dist: [[r, r, ...], ...]}``): they are reported
        with advantage 0 and their rewards (:func:`~trainer_client.protocol.with_filtered`).
        The ``report_id`` is ``{run}/step-{step}/rank-{rank}`` (``/{k}`` appended for this
        client's k-th further report of that step) unless given. Bad values (NaN, an
        unknown distribution) raise :class:`~trainer_client.errors.InvalidRequest` and are
        not buffered; while the service is down the report is buffered.
        ``with_weights=False`` leaves the new weights out of the answer (``weights`` is
        empty): with thousands of distributions they are most of a report's cost.
        ``groups``, in a run that declares prompts: each generated group's
        ``{"distribution", "prompt", "rewards"}``, which moves its prompt's selection state.
        """
        return self._run(
            self._proto.report(step, advantages, rewards, report_id, with_weights, filtered, groups)
        )

    def report_filtered(
        self, step: int, filtered: Groups, *, report_id: str | None = None
    ) -> ReportResult:
        """Report only groups a filter dropped: ``report(step, {}, filtered=filtered)``."""
        return self.report(step, {}, filtered=filtered, report_id=report_id)

    def weights(self) -> dict[str, float]:
        """The run's current sampling probabilities (computed locally while down)."""
        return self._run(self._proto.weights())

    def run_info(self, run_id: str | None = None) -> dict[str, Any]:
        """``GET /v1/runs/{run}``: config, version, weights and per-distribution stats, its
        pages joined. ``run_id``: another run's (with the operator token), not synced first."""
        return self._run(self._proto.run_info(run_id))

    def history(self, limit: int | None = None) -> dict[str, Any]:
        """``GET /v1/runs/{run}/history``: weights and window means per step, oldest first."""
        params = {"limit": limit} if limit is not None else None
        data: dict[str, Any] = self._run(
            self._proto.online(
                "GET", self._proto.run_path("/history"), params=params, required=True
            )
        )
        return data

    def export(self) -> dict[str, Any]:
        """The service's snapshot of the run (what is owed is replayed first)."""
        return self._run(self._proto.export())

    def import_(self, snapshot: Mapping[str, Any]) -> dict[str, Any]:
        """Replace the run's state on the service with ``snapshot`` (from :meth:`export`)."""
        return self._run(self._proto.import_(snapshot))

    def checkpoint(self) -> dict[str, Any]:
        """What to save beside a trainer checkpoint, service or not: the service's snapshot,
        or, while it is down, the local state and the reports it is still owed."""
        return self._run(self._proto.checkpoint())

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue the run from :meth:`checkpoint`'s ``state`` (or an :meth:`export`
        snapshot): imported now, or once the service answers."""
        self._run(self._proto.restore(state))

    def flush(self, timeout_s: float = 60.0) -> bool:
        """Try for up to ``timeout_s`` seconds to hand the service everything owed; True
        when nothing is owed any more (what is left stays in ``buffer_path``)."""
        return self._run(self._proto.flush(timeout_s))

    def delete(self) -> None:
        """Delete the run on the service, then forget what it was owed."""
        self._run(self._proto.delete())

    def call(
        self, method: str, path: str, body: Any = None, params: Mapping[str, Any] | None = None
    ) -> Any:
        """One request to any endpoint (``path`` from the service's root) with this client's
        token, timeout and retries, replaying nothing: the JSON answer. A 4xx raises its
        ``RequestRejected``; a service unreachable after the retries, ``ServiceUnavailable``."""
        return self._run(self._proto.request(method, path, body, params))

    def close(self) -> None:
        """Close the connections (what is owed stays in ``buffer_path``, if any)."""
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
        return httpx.AsyncClient(timeout=timeout, transport=transport)

    async def _run(self, flow: Flow[T]) -> T:
        """Drive ``flow`` to its end on the event loop."""
        reply: Any = None
        try:
            while True:
                command = flow.send(reply)
                if isinstance(command, Wait):
                    await asyncio.sleep(command.seconds)
                    reply = None
                    continue
                reply = await self._send(command)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    async def _send(self, command: Send) -> httpx.Response | httpx.TransportError:
        try:
            return await self._http.request(
                command.method,
                command.base_url + command.path,
                json=command.body,
                params=command.params,
                headers=command.headers,
            )
        except httpx.TransportError as exc:
            return exc

    @classmethod
    async def create_or_attach(
        cls,
        base_url: str | Sequence[str],
        distributions: Sequence[str],
        *,
        run_id: str | None = None,
        strategy: str | Mapping[str, Any] | None = None,
        seed: int = 0,
        token: str | None = None,
        **kw: Any,
    ) -> Self:
        """See :meth:`CurriculumClient.create_or_attach`."""
        client = cls._for_new_run(base_url, distributions, run_id, strategy, seed, token, kw)
        try:
            await client._run(client._proto.attach())
        except CurriculumError:
            await client.close()
            raise
        return client

    async def plan(self, step: int, batch_size: int, round: int = 0) -> Plan:
        """See :meth:`CurriculumClient.plan`."""
        return await self._run(self._proto.plan(step, batch_size, round))

    async def report(
        self,
        step: int,
        advantages: Mapping[str, Sequence[float]],
        rewards: Mapping[str, Sequence[float]] | None = None,
        *,
        filtered: Groups | None = None,
        report_id: str | None = None,
        with_weights: bool = True,
        groups: Sequence[Mapping[str, Any]] | None = None,
    ) -> ReportResult:
        """See :meth:`CurriculumClient.report`."""
        return await self._run(
            self._proto.report(step, advantages, rewards, report_id, with_weights, filtered, groups)
        )

    async def report_filtered(
        self, step: int, filtered: Groups, *, report_id: str | None = None
    ) -> ReportResult:
        """See :meth:`CurriculumClient.report_filtered`."""
        return await self.report(step, {}, filtered=filtered, report_id=report_id)

    async def weights(self) -> dict[str, float]:
        """See :meth:`CurriculumClient.weights`."""
        return await self._run(self._proto.weights())

    async def run_info(self, run_id: str | None = None) -> dict[str, Any]:
        """See :meth:`CurriculumClient.run_info`."""
        return await self._run(self._proto.run_info(run_id))

    async def history(self, limit: int | None = None) -> dict[str, Any]:
        """See :meth:`CurriculumClient.history`."""
        params = {"limit": limit} if limit is not None else None
        data: dict[str, Any] = await self._run(
            self._proto.online(
                "GET", self._proto.run_path("/history"), params=params, required=True
            )
        )
        return data

    async def export(self) -> dict[str, Any]:
        """See :meth:`CurriculumClient.export`."""
        return await self._run(self._proto.export())

    async def import_(self, snapshot: Mapping[str, Any]) -> dict[str, Any]:
        """See :meth:`CurriculumClient.import_`."""
        return await self._run(self._proto.import_(snapshot))

    async def checkpoint(self) -> dict[str, Any]:
        """See :meth:`CurriculumClient.checkpoint`."""
        return await self._run(self._proto.checkpoint())

    async def restore(self, state: Mapping[str, Any]) -> None:
        """See :meth:`CurriculumClient.restore`."""
        await self._run(self._proto.restore(state))

    async def flush(self, timeout_s: float = 60.0) -> bool:
        """See :meth:`CurriculumClient.flush`."""
        return await self._run(self._proto.flush(timeout_s))

    async def delete(self) -> None:
        """See :meth:`CurriculumClient.delete`."""
        await self._run(self._proto.delete())

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
