"""Every call flow of the client, written once, with no I/O (the "sans-I/O" style).

A flow is a generator. It yields :class:`Send` (an HTTP request to make) or :class:`Wait`
(seconds to sleep) and receives, for a ``Send``, the ``httpx.Response`` or the
``httpx.TransportError`` it raised. Its return value is the call's result. The blocking and
the asynchronous clients (:mod:`trainer_client.client`) are thin drivers of these flows, so
retries, the outage fallback and the replay of what is owed exist once.

What a :class:`ClientProtocol` keeps:

- ``model``, a :class:`curriculum_core.RunModel`: the run as this client last saw it on the
  service (``GET /v1/runs/{run}/export``, exact windows and strategy state) plus every
  report this client made since. While the service is down, plans and weights come from it:
  the service's own math on the same state.
- ``buffer``, a :class:`~trainer_client.buffer.ReportBuffer`: the calls the service is
  owed (the run's creation, a snapshot's import, reports), replayed in order before
  anything else once it answers.
- ``probe``: the cool-down between attempts to reach a service that is down.
- ``base_urls``: the service's replicas; a request goes to the one that answered last and
  moves on to the next on a transport error or a 5xx (see :meth:`ClientProtocol.request`).
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter, OrderedDict
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar

import httpx

from curriculum_core import MAX_REPORT_VALUE, SNAPSHOT_FORMAT, ReportError, RunModel, reportable
from curriculum_core.run_model import Group
from trainer_client.buffer import Pending, PendingCall, PendingReport, ReportBuffer
from trainer_client.errors import (
    CurriculumError,
    InvalidRequest,
    RequestRejected,
    ServiceUnavailable,
    rejection,
)
from trainer_client.probe import ProbeSchedule

log = logging.getLogger("trainer_client")

T = TypeVar("T")

CHECKPOINT_FORMAT = "rl-curriculum.client-checkpoint/1"
"""The ``format`` of what :meth:`ClientProtocol.checkpoint` returns."""

PLAN_MEMORY = 1024
"""Plans remembered per client, so asking for a step again gives the same batch."""

_SEQUENCE_MEMORY = 4096  # steps whose report count per rank is remembered


def join_run_pages(run: Mapping[str, Any], page: Mapping[str, Any]) -> dict[str, Any]:
    """The answer of ``GET /v1/runs/{run}`` with the next page's distributions added (the
    rest, ``version`` included, is the later page's: a run reported to while it is read
    shows its distributions as of successive versions)."""
    names = [*run["config"]["distributions"], *page["config"]["distributions"]]
    last_step = {**run["activity"]["last_step"], **page["activity"]["last_step"]}
    config = {**page["config"], "distributions": names}
    activity = {**page["activity"], "last_step": last_step}
    return {
        **page,
        "config": config,
        "weights": {**run["weights"], **page["weights"]},
        "stats": {**run["stats"], **page["stats"]},
        "activity": activity,
        "offset": run["offset"],
    }


@dataclass(frozen=True)
class Send:
    """An HTTP request for the driver to make."""

    method: str
    path: str
    body: Any = None
    params: Mapping[str, Any] | None = None
    headers: Mapping[str, str] | None = None
    base_url: str = ""
    """The replica to send it to (``path`` is relative to it)."""


@dataclass(frozen=True)
class Wait:
    """Seconds for the driver to sleep before resuming the flow."""

    seconds: float


Flow = Generator[Send | Wait, "httpx.Response | httpx.TransportError | None", T]


@dataclass(frozen=True)
class Plan:
    """The composition of one step's batch (of one generation round of it).

    ``assignment[i]`` is the distribution of slot ``i``; ``counts`` the slots per
    distribution (non-zero only). ``version`` is the service version the weights came from
    (for a local plan: the version of the local state). ``source`` says whether the service
    made the plan or the client did, without it. ``round`` is the step's generation round
    (0: the step's batch; 1, 2, ...: refills, docs/api.md). ``prompt_ids[i]``, in a run
    that declares prompts, is the prompt of slot ``i`` (an index into its distribution's
    rows); ``None`` otherwise.
    """

    step: int
    batch_size: int
    version: int
    assignment: list[str]
    counts: dict[str, int]
    source: Literal["service", "local"]
    round: int = 0
    prompt_ids: list[int] | None = None


Groups = Mapping[str, Sequence[Sequence[float]]]
"""Per distribution, a list of groups, each the rewards of one prompt's completions."""


def with_filtered(
    advantages: Mapping[str, Sequence[float]],
    rewards: Mapping[str, Sequence[float]] | None,
    filtered: Groups | None,
) -> tuple[dict[str, list[float]], dict[str, list[float]] | None]:
    """A report's advantages and rewards with the groups a filter dropped added.

    ``filtered`` holds, per distribution, the rewards of each dropped group (dynamic
    sampling drops the groups whose rewards are all equal). A dropped group was generated,
    so the scheduler must learn from it: its completions are reported with advantage 0 (a
    group is dropped because its advantages are zero) and their real rewards, after the
    trained samples' values of the same distribution.

    >>> with_filtered({"a": [0.7, -0.7]}, {"a": [1.0, 0.0]}, {"a": [[1.0, 1.0]], "b": [[0.0]]})
    ({'a': [0.7, -0.7, 0.0, 0.0], 'b': [0.0]}, {'a': [1.0, 0.0, 1.0, 1.0], 'b': [0.0]})
    """
    if not filtered:
        return dict(advantages), dict(rewards) if rewards is not None else None
    adv = {name: list(values) for name, values in advantages.items()}
    rew = {name: list(values) for name, values in (rewards or {}).items()}
    for name, groups in filtered.items():
        for group in groups:
            values = [float(v) for v in group]
            adv.setdefault(name, []).extend([0.0] * len(values))
            rew.setdefault(name, []).extend(values)
    return adv, rew


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


def parse_base_urls(base_url: str | Sequence[str]) -> list[str]:
    """The base URLs of the service's replicas, from a list or one string (several
    separated by commas, as an environment variable or a flag gives them)."""
    parts = base_url.split(",") if isinstance(base_url, str) else list(base_url)
    urls = [part.strip().rstrip("/") for part in parts if part.strip()]
    if not urls:
        raise ValueError(f"need at least one base URL, got {base_url!r}")
    return urls


def checkpoint_parts(state: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The snapshot and the pending report bodies of a :meth:`ClientProtocol.checkpoint`;
    a bare snapshot (``export()``, as older checkpoints hold) has no pending reports."""
    if state.get("format") == CHECKPOINT_FORMAT:
        return dict(state["snapshot"]), list(state["pending"])
    if state.get("format", SNAPSHOT_FORMAT) != SNAPSHOT_FORMAT:
        raise ValueError(f"not a scheduler checkpoint: format {state.get('format')!r}")
    return dict(state), []


class ClientProtocol:
    """A client's state and the flow of every call; no I/O (see the module doc)."""

    def __init__(
        self,
        base_urls: Sequence[str],
        run_id: str,
        token: str | None,
        *,
        rank: int,
        retries: int,
        backoff: float,
        buffer: ReportBuffer,
        distributions: Sequence[str] | None,
        strategy: str | Mapping[str, Any] | None,
        seed: int,
        refresh_every: int,
        probe_initial_s: float,
        probe_max_s: float,
        prompts: Mapping[str, int] | None = None,
        prompt_selection: Mapping[str, Any] | None = None,
    ) -> None:
        if retries < 0 or backoff < 0 or refresh_every < 1 or rank < 0:
            raise ValueError("need retries >= 0, backoff >= 0, refresh_every >= 1, rank >= 0")
        self.base_urls = list(base_urls)
        self._replica = 0  # the index of the replica requests go to first
        self.run_id = run_id
        self.token = token
        self.rank = rank
        self.retries = retries
        self.backoff = backoff
        self.refresh_every = refresh_every
        self.model: RunModel | None = None
        if distributions is not None:
            self.model = RunModel(
                distributions,
                strategy,
                seed,
                run_id=run_id,
                prompts=prompts,
                prompt_selection=prompt_selection,
            )
        self.buffer = buffer
        for item in buffer:  # owed from an earlier process: part of the local state too
            self._apply_locally(item)
        self.probe = ProbeSchedule(probe_initial_s, probe_max_s)
        self.replayed = 0
        self._synced = False  # model == the service's state at model.version
        self._reports_since_refresh: int | None = None  # None: never refreshed
        self._plans: OrderedDict[tuple[int, int, int], Plan] = OrderedDict()
        self._sequence: OrderedDict[int, int] = OrderedDict()
        self._jitter = random.Random()

    # --- one request, retried ------------------------------------------------------------

    def run_path(self, suffix: str = "") -> str:
        return f"/v1/runs/{self.run_id}{suffix}"

    def _retry_delay(self, attempt: int, retry_after: str | None) -> float:
        """Seconds before retry ``attempt`` (0-based): jittered backoff, >= Retry-After."""
        delay = self.backoff * 2**attempt * self._jitter.uniform(0.5, 1.0)
        try:
            asked = float(retry_after) if retry_after is not None else 0.0
        except ValueError:  # an HTTP-date: fall back to the backoff
            asked = 0.0
        return max(delay, min(asked, self.probe.max_s))

    @property
    def base_url(self) -> str:
        """The replica requests go to first: the last one that answered."""
        return self.base_urls[self._replica]

    def _where(self) -> str:
        return ", ".join(self.base_urls)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Flow[Any]:
        """The JSON answer; a 4xx raises the matching ``RequestRejected``.

        A transport error, a 5xx or a 429 (the service's large-report slots are taken)
        moves on to the next replica at once; only when every replica failed is the round
        retried, after a backoff of at least its ``Retry-After`` (one round while the
        service is down: a probe). Requests then stay with the replica that answered.
        Moving a report to another replica is safe: every replica shares one Redis, which
        counts a report id once, atomically with the report."""
        attempts = 1 if self.probe.down else 1 + self.retries
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        retry_after: str | None = None
        last = ""
        for attempt in range(attempts):
            if attempt:
                yield Wait(self._retry_delay(attempt - 1, retry_after))
            retry_after = None  # the round's last Retry-After
            for _ in self.base_urls:
                reply = yield Send(method, path, body, params, headers, self.base_url)
                if isinstance(reply, httpx.TransportError):
                    last = f"{self.base_url}: {type(reply).__name__}: {reply}"
                elif reply is not None and reply.status_code < 500 and reply.status_code != 429:
                    try:
                        return _answer(reply)
                    except MalformedAnswer as exc:  # a faulty replica or proxy: as a 5xx
                        last = f"{self.base_url}: {exc}"
                else:
                    assert reply is not None
                    retry_after = reply.headers.get("Retry-After")
                    last = f"{self.base_url}: HTTP {reply.status_code}"
                self._next_replica(last)
        raise ServiceUnavailable(
            f"{method} {path} failed after {attempts} attempt(s) of "
            f"{len(self.base_urls)} replica(s); last: {last}"
        )

    def _next_replica(self, failure: str) -> None:
        if len(self.base_urls) > 1:
            self._replica = (self._replica + 1) % len(self.base_urls)
            log.info("%s; trying %s", failure, self.base_url)

    # --- health ----------------------------------------------------------------------------

    def _on_failure(self, exc: ServiceUnavailable) -> None:
        if self.probe.failed(time.monotonic()):
            log.warning(
                "curriculum service at %s unreachable (%s); scheduling locally and buffering "
                "reports until it answers",
                self._where(),
                exc,
            )

    def _on_recovery(self) -> None:
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

    # --- what is owed, and the local state ---------------------------------------------------

    def _apply_locally(self, item: Pending) -> None:
        """Make the local state show ``item`` (the service will, once it is replayed)."""
        if item.kind == "create":
            body = item.body()
            if self.model is None:
                self.model = RunModel(
                    body["distributions"],
                    body.get("strategy"),
                    body.get("seed", 0),
                    run_id=self.run_id,
                    prompts=body.get("prompts"),
                    prompt_selection=body.get("prompt_selection"),
                )
        elif item.kind == "import":
            self._take_import(item.body(), int(item.body().get("version", 0)))
        elif self.model is not None:
            self.model.apply(item.report_id, item.advantages, item.rewards, self._groups(item))

    def _groups(self, item: PendingReport) -> list[Group]:
        """A report's groups for the local model (none where the model declares no prompts:
        the service refuses those, and the report is dropped from the buffer then)."""
        if not item.groups or self.model is None or self.model.prompts is None:
            return []
        return self.model.validate_groups(item.groups)

    def _owe(self, item: Pending) -> None:
        self.buffer.add(item)
        self._apply_locally(item)

    def owe_creation(self, body: dict[str, Any]) -> None:
        """Queue the run's creation, unless an earlier client on this buffer queued it."""
        if not self.buffer.has_create():
            self._owe(PendingCall(self.run_id, "create", body))

    def _replay(self) -> Flow[None]:
        """Send what is owed, oldest first; the buffer file follows."""
        if self.buffer.peek() is None:
            return
        try:
            while (item := self.buffer.peek()) is not None:
                path = (
                    "/v1/runs"
                    if item.kind == "create"
                    else self.run_path("/import" if item.kind == "import" else "/reports")
                )
                method = "PUT" if item.kind == "import" else "POST"
                try:
                    data = yield from self.request(method, path, item.body())
                except InvalidRequest as exc:
                    if item.kind == "create":
                        raise
                    # a call the service refuses as invalid must not hold up those behind it
                    log.error("dropping a buffered %s: the service refused it: %s", item.kind, exc)
                else:
                    if item.kind == "create":
                        self._on_created(data)
                    elif item.kind == "import":
                        self._synced = False
                    else:
                        self.replayed += 1
                    self._reports_since_refresh = None  # one refresh after a replay
                self.buffer.pop()
        finally:
            self.buffer.persist()

    def _on_created(self, data: Mapping[str, Any]) -> None:
        """Take the token of a created run, or insist on one for an existing run."""
        if data["created"]:
            self.token = data["token"]
        elif self.token is None:
            raise TokenRequired(
                f"run {self.run_id!r} exists; pass its token (token=...) to attach to it"
            )

    def _needs_refresh(self) -> bool:
        n = self._reports_since_refresh
        return n is None or (not self._synced and n >= self.refresh_every)

    def _on_snapshot(self, snapshot: Mapping[str, Any]) -> None:
        """Start the local state from the service's exact state, plus what is still owed."""
        self.model = RunModel.from_snapshot(snapshot)
        for item in self.buffer:
            self._apply_locally(item)
        self._synced = not self.buffer.reports
        self._reports_since_refresh = 0

    def sync(self) -> Flow[None]:
        """Replay what is owed, then refresh the local state when it may have drifted."""
        yield from self._replay()
        if self._needs_refresh():
            snapshot = yield from self.request(
                "GET", self.run_path("/export"), params={"history": "false"}
            )
            self._on_snapshot(snapshot)

    def online(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        *,
        required: bool,
    ) -> Flow[Any]:
        """The service's answer after a sync; None (or raise, if ``required``) when down.

        A call that is not required does not touch the network during the cool-down
        after a failure."""
        if not required and not self.probe.may_try(time.monotonic()):
            return None
        try:
            yield from self.sync()
            data = yield from self.request(method, path, body, params)
        except ServiceUnavailable as exc:
            self._on_failure(exc)
            if required:
                raise
            return None
        self._on_recovery()
        return data

    def run_info(self, run_id: str | None = None) -> Flow[dict[str, Any]]:
        """``GET /v1/runs/{run}`` page after page, joined into the answer for the whole run
        (this client's run after a sync, or ``run_id``'s with no sync: the operator's)."""
        path = self.run_path() if run_id is None else f"/v1/runs/{run_id}"
        if run_id is None:
            run = yield from self.online("GET", path, required=True)
        else:
            run = yield from self.request("GET", path)
        while run.get("next_offset") is not None:
            page = yield from self.request("GET", path, params={"offset": run["next_offset"]})
            run = join_run_pages(run, page)
        return run  # type: ignore[no-any-return]

    def _try_sync(self) -> Flow[None]:
        """Sync unless in a cool-down; an unreachable service only starts (or continues)
        the fallback."""
        if not self.probe.may_try(time.monotonic()):
            return
        try:
            yield from self.sync()
        except ServiceUnavailable as exc:
            self._on_failure(exc)
        else:
            self._on_recovery()

    def _require_model(self) -> RunModel:
        if self.model is None:
            raise ServiceUnavailable(
                "the service has not been reached yet, so the run's distributions are "
                "unknown and nothing can be scheduled locally; start the service, or pass "
                "distributions= (and strategy=, seed=) to the client"
            )
        return self.model

    # --- the calls -------------------------------------------------------------------------

    def attach(self) -> Flow[None]:
        """First contact: create the run if that is owed, replay, fetch the state. An
        unreachable service is no error here: the client starts in fallback."""
        yield from self._try_sync()

    def plan(self, step: int, batch_size: int, round: int = 0) -> Flow[Plan]:
        """Generation round ``round`` of the step's batch composition: the service's, or
        made locally (the same draw: ``plan_rng(seed, step, batch_size, round)``) while it
        is down."""
        if batch_size < 1 or step < 0 or round < 0:
            raise ValueError(
                f"need step >= 0, batch_size >= 1 and round >= 0, got {step}, {batch_size} "
                f"and {round}"
            )
        body = {"step": step, "batch_size": batch_size}
        if round:
            body["round"] = round  # a request without one is round 0, on any service version
        data = yield from self.online("POST", self.run_path("/plan"), body, required=False)
        if data is None:
            return self._local_plan(step, batch_size, round)
        ids = data.get("prompt_ids")
        plan = Plan(
            step=step,
            batch_size=batch_size,
            version=int(data["version"]),
            assignment=list(data["assignment"]),
            counts={k: int(v) for k, v in data["counts"].items()},
            source="service",
            round=round,
            prompt_ids=None if ids is None else [int(i) for i in ids],
        )
        if ids is not None and self.model is not None and self.model.prompts is not None:
            # the plan moved the service's prompt cursors: move the local ones alike (the
            # same plan while the states agree; a refresh follows when they do not)
            local = self.model.plan_step(step, batch_size, round)
            if (local.assignment, local.prompt_ids) != (plan.assignment, plan.prompt_ids):
                self._synced = False
        self._remember_plan(plan)
        return plan

    def _remember_plan(self, plan: Plan) -> None:
        key = (plan.step, plan.batch_size, plan.round)
        self._plans[key] = plan
        self._plans.move_to_end(key)
        while len(self._plans) > PLAN_MEMORY:
            self._plans.popitem(last=False)

    def _local_plan(self, step: int, batch_size: int, round: int = 0) -> Plan:
        """The plan this client got for the step's round before, or the local model's
        (which names the prompts, as the service would, in a run that declares them)."""
        model = self._require_model()
        known = self._plans.get((step, batch_size, round))
        if known is not None:
            return replace(known, source="local")
        drawn = model.plan_step(step, batch_size, round)
        counts = Counter(drawn.assignment)
        plan = Plan(
            step=step,
            batch_size=batch_size,
            version=model.version,
            assignment=drawn.assignment,
            counts={name: counts[name] for name in model.names if counts[name]},
            source="local",
            round=round,
            prompt_ids=drawn.prompt_ids,
        )
        self._remember_plan(plan)
        return plan

    def _next_report_id(self, step: int) -> str:
        """``{run}/step-{step}/rank-{rank}``, then ``.../rank-{rank}/{k}`` for the k-th repeat."""
        k = self._sequence.get(step, -1) + 1
        self._sequence[step] = k
        self._sequence.move_to_end(step)
        while len(self._sequence) > _SEQUENCE_MEMORY:
            self._sequence.popitem(last=False)
        base = f"{self.run_id}/step-{step}/rank-{self.rank}"
        return base if k == 0 else f"{base}/{k}"

    def report(
        self,
        step: int,
        advantages: Mapping[str, Sequence[float]],
        rewards: Mapping[str, Sequence[float]] | None,
        report_id: str | None,
        with_weights: bool,
        filtered: Groups | None = None,
        groups: Sequence[Mapping[str, Any]] | None = None,
    ) -> Flow[ReportResult]:
        """Report a step's advantages, the groups a filter dropped (:func:`with_filtered`)
        and, in a run that declares prompts, each group's prompt and rewards; buffered (and
        counted locally) while down."""
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        advantages, rewards = with_filtered(advantages, rewards, filtered)
        try:
            # the service would refuse what this refuses: it must not wait in the buffer
            adv, rew = validate_report(self.model, advantages, rewards)
            wire_groups = None if groups is None else _wire_groups(self.model, groups)
        except ReportError as exc:
            raise InvalidRequest(422, "invalid_input", str(exc)) from None
        report_id = report_id or self._next_report_id(step)
        item = PendingReport(
            self.run_id, report_id, step, adv, rew, rank=self.rank, groups=wire_groups
        )
        path = self.run_path("/reports" if with_weights else "/reports?weights=false")
        data = yield from self.online("POST", path, item.body(), required=False)
        if data is None:
            self._owe(item)
            local = self.model
            weights = local.named_weights() if with_weights and local is not None else {}
            return ReportResult("buffered", item.report_id, local.version if local else 0, weights)
        model = self._require_model()  # the sync gave it, if it was missing
        if data["status"] == "applied":
            model.apply(item.report_id, item.advantages, item.rewards, self._groups(item))
            self._synced = self._synced and model.version == int(data["version"])
        elif not model.has_report(item.report_id):
            self._synced = False  # counted by the service before, not in the local state
        if self._reports_since_refresh is not None:
            self._reports_since_refresh += 1
        return ReportResult(
            status=data["status"],
            report_id=item.report_id,
            version=int(data["version"]),
            weights=dict(data.get("weights") or {}),
        )

    def weights(self) -> Flow[dict[str, float]]:
        """The run's current sampling probabilities (computed locally while down)."""
        data = yield from self.online("GET", self.run_path(), required=False)
        if data is None:
            return self._require_model().named_weights()
        return dict(data["weights"])

    def export(self) -> Flow[dict[str, Any]]:
        """The service's snapshot of the run (what is owed is replayed first)."""
        data: dict[str, Any] = yield from self.online(
            "GET", self.run_path("/export"), required=True
        )
        self._on_snapshot(data)
        return data

    def import_(self, snapshot: Mapping[str, Any]) -> Flow[dict[str, Any]]:
        """Replace the run's state on the service with ``snapshot``."""
        data: dict[str, Any] = yield from self.online(
            "PUT", self.run_path("/import"), dict(snapshot), required=True
        )
        self._take_import(snapshot, int(data["version"]))
        return data

    def _take_import(self, snapshot: Mapping[str, Any], version: int) -> None:
        if self.model is None:
            self.model = RunModel.from_snapshot(snapshot)
            self.model.run_id = self.run_id
        else:
            self.model.load_state(snapshot)
        self.model.version = version
        self._plans.clear()
        self._synced = False
        self._reports_since_refresh = None

    def checkpoint(self) -> Flow[dict[str, Any]]:
        """What to save beside a trainer checkpoint; never fails for an outage.

        With the service reachable: its snapshot (what is owed replayed first), nothing
        pending. Without: the local state, which holds every report this client made, and
        the reports still owed to the service."""
        data = yield from self.online("GET", self.run_path("/export"), required=False)
        if data is not None:
            self._on_snapshot(data)
            return {
                "format": CHECKPOINT_FORMAT,
                "source": "service",
                "snapshot": data,
                "pending": [],
            }
        snapshot = self._require_model().snapshot()
        snapshot["run_id"] = self.run_id
        pending = [item.body() for item in self.buffer if isinstance(item, PendingReport)]
        return {
            "format": CHECKPOINT_FORMAT,
            "source": "local",
            "snapshot": snapshot,
            "pending": pending,
        }

    def restore(self, state: Mapping[str, Any]) -> Flow[None]:
        """Continue the run from a :meth:`checkpoint` (or an ``export()`` snapshot); never
        fails for an outage.

        The service is owed the snapshot's import and then the checkpoint's pending
        reports; both are replayed now if it answers, else once it does. Reports owed from
        before (of steps after the checkpoint, which the trainer runs again) are dropped.
        """
        snapshot, pending = checkpoint_parts(state)
        reports = [
            PendingReport(
                self.run_id,
                body["report_id"],
                int(body["step"]),
                body["advantages"],
                body.get("rewards"),
                rank=body.get("rank"),
            )
            for body in pending
        ]
        # first into the local state: a snapshot of other distributions raises here, before
        # the service is owed anything
        self._take_import(snapshot, int(snapshot.get("version", 0)))
        self.buffer.restart_from(PendingCall(self.run_id, "import", snapshot), reports)
        for item in reports:
            self._apply_locally(item)
        yield from self._try_sync()

    def flush(self, timeout_s: float) -> Flow[bool]:
        """Try for up to ``timeout_s`` seconds to hand the service everything owed; True
        when nothing is owed any more."""
        deadline = time.monotonic() + timeout_s
        while True:
            if not self.buffer:
                return True
            try:
                yield from self._replay()
            except ServiceUnavailable as exc:
                self._on_failure(exc)
            else:
                self._on_recovery()
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            yield Wait(min(left, max(self.probe.initial_s, 0.05)))

    def delete(self) -> Flow[None]:
        """Delete the run on the service, then forget what it was owed."""
        yield from self.online("DELETE", self.run_path(), required=True)
        self.buffer.clear()


def validate_report(
    model: RunModel | None,
    advantages: Mapping[str, Sequence[float]],
    rewards: Mapping[str, Sequence[float]] | None,
) -> tuple[dict[str, list[float]], dict[str, list[float]] | None]:
    """The report's values as float lists, checked by the run's model; before the client
    knows the run (no model) only finiteness can be checked."""
    if model is not None:
        return model.validate(advantages, rewards)
    out: list[dict[str, list[float]]] = []
    for label, by_name in (("advantages", advantages), ("rewards", rewards or {})):
        floats = {str(k): [float(v) for v in values] for k, values in by_name.items()}
        if not all(reportable(values) for values in floats.values()):
            raise ReportError(f"{label} hold NaN, infinite or values beyond +-{MAX_REPORT_VALUE:g}")
        out.append(floats)
    return out[0], (out[1] if rewards is not None else None)


def _wire_groups(
    model: RunModel | None, groups: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """A report's groups as the wire has them, checked by the run's model when the client
    knows the run."""
    if model is not None:
        checked = model.validate_groups(groups)
        return [
            {"distribution": g.distribution, "prompt": g.prompt, "rewards": g.rewards}
            for g in checked
        ]
    out = []
    for group in groups:
        rewards = [float(r) for r in group.get("rewards", ())]
        if not rewards or not reportable(rewards):
            raise ReportError(
                f"a group's rewards must be one or more finite values within +-{MAX_REPORT_VALUE:g}"
            )
        out.append(
            {
                "distribution": str(group["distribution"]),
                "prompt": int(group["prompt"]),
                "rewards": rewards,
            }
        )
    return out


class MalformedAnswer(Exception):
    """A success answer whose body is not a JSON object: the client treats it as a failed
    replica (the next one is tried, then the service counts as down), never as a result."""


def _answer(response: httpx.Response) -> Any:
    """The JSON object of a non-5xx answer; a 4xx raises the matching ``RequestRejected``,
    a body that is not a JSON object :class:`MalformedAnswer`."""
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            body = None
        raise rejection(response.status_code, body)
    try:
        data = response.json()
    except ValueError as exc:
        raise MalformedAnswer(f"HTTP {response.status_code} with a body that is not JSON") from exc
    if not isinstance(data, dict):
        raise MalformedAnswer(f"HTTP {response.status_code} with JSON that is not an object")
    return data


__all__ = [
    "CHECKPOINT_FORMAT",
    "ClientProtocol",
    "Flow",
    "Groups",
    "Plan",
    "ReportResult",
    "RequestRejected",
    "Send",
    "TokenRequired",
    "Wait",
    "checkpoint_parts",
    "parse_base_urls",
    "with_filtered",
]
