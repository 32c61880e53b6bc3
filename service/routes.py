"""HTTP handlers: a schema in, one call on :class:`RunService`, a schema out."""

from __future__ import annotations

import email.message
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from service.auth import require_metrics_reader
from service.doctor import Doctor
from service.off_loop import OffLoop
from service.run_gauges import RunGauges
from service.run_index import RunIndex
from service.runs import RunService
from service.schemas import (
    CreateRunRequest,
    CreateRunResponse,
    DeleteOut,
    DoctorOut,
    ErrorOut,
    HistoryOut,
    ImportOut,
    PlanOut,
    PlanRequest,
    ReportOut,
    ReportRequest,
    RunId,
    RunListOut,
    RunOut,
    Snapshot,
)
from service.store.keys import RUN_ID_PATTERN
from service.store.listing import CURSOR_PATTERN
from service.store.redis_store import RedisStore

M = TypeVar("M", bound=BaseModel)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (``None`` if none is given)."""
    if authorization is None:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def _caller(request: Request) -> tuple[RunService, str | None]:
    """The service and the caller's bearer token, read straight off the request.

    Not FastAPI dependencies: each one cost about 35 us of CPU per request, a sixth of a kept
    plan (docs/benchmarks.md). The header is documented by the ``bearer`` security scheme.
    """
    runs: RunService = request.app.state.runs
    return runs, bearer_token(request.headers.get("authorization"))


BEARER_SCHEME = "bearer"
_AUTH: dict[str, Any] = {"security": [{BEARER_SCHEME: []}]}
"""``openapi_extra`` of every call on a run: it needs the run's (or the operator's) token."""
_AUTH_IF_SET: dict[str, Any] = {"security": [{BEARER_SCHEME: []}, {}]}
"""Calls that need a token only where the deployment's settings say so: creating a run (the
operator's, where one is set) and ``/metrics`` (the metrics or the operator token)."""


def _json(model: BaseModel) -> Response:
    # The answers that carry K numbers (weights, statistics) are serialised by pydantic-core
    # in one pass; FastAPI's generic path would walk them in Python (milliseconds at K=10k).
    return Response(model.model_dump_json(), media_type="application/json")


RunIdPath = Annotated[
    RunId, Path(pattern=RUN_ID_PATTERN, description="The run's id.", examples=["kk-demo"])
]

_ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorOut, "description": text}
    for status, text in {
        400: "Malformed JSON",
        401: "No bearer token",
        403: "The token grants no such run (another run's token, an unknown one, or a run "
        "that does not exist: one answer for all), or creating a run needs the operator token",
        404: "No such run (an operator's token only)",
        409: "The run is stored in another storage layout (export it with the version that "
        "wrote it, import it here)",
        413: "Body too large",
        422: "A value out of range",
        503: "Redis unreachable; retry after Retry-After seconds",
    }.items()
}

router = APIRouter(responses=_ERRORS)


@router.post(
    "/v1/runs",
    status_code=201,
    openapi_extra=_AUTH_IF_SET,
    response_model=CreateRunResponse,
    responses={
        200: {"model": CreateRunResponse, "description": "The run exists with this config"},
        409: {"model": ErrorOut, "description": "The run exists with another config"},
    },
    tags=["runs"],
)
async def create_run(body: CreateRunRequest, request: Request) -> JSONResponse:
    """Create a run. Its token is in the answer, this once. Same config again: 200, no-op."""
    runs, token = _caller(request)
    created = await runs.create(body, token)
    return JSONResponse(
        created.model_dump(mode="json"), status_code=201 if created.created else 200
    )


@router.get(
    "/v1/runs",
    openapi_extra=_AUTH,
    response_model=RunListOut,
    responses={
        403: {
            "model": ErrorOut,
            "description": "The token is not the operator's (or the "
            "deployment sets no ADMIN_TOKEN)",
        },
        422: {"model": ErrorOut, "description": "A cursor or limit out of range"},
    },
    tags=["runs"],
)
async def list_runs(
    request: Request,
    cursor: Annotated[
        str | None,
        Query(
            pattern=CURSOR_PATTERN,
            max_length=160,
            description="`next_cursor` of the page before; absent for the first page.",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most runs in the page.")] = 100,
) -> Response:
    """The deployment's runs, a page at a time (operator token only)."""
    index: RunIndex = request.app.state.run_index
    return _json(await index.page(_caller(request)[1], cursor, limit))


@router.get(
    "/v1/runs/{run_id}",
    openapi_extra=_AUTH,
    response_model=RunOut,
    responses={
        422: {
            "model": ErrorOut,
            "description": "A limit over the deployment's CURRICULUM_RUN_PAGE_MAX_LIMIT",
        }
    },
    tags=["runs"],
)
async def get_run(
    run_id: RunIdPath,
    request: Request,
    offset: Annotated[
        int,
        Query(
            ge=0, description="The page's first distribution (`next_offset` of the page before)."
        ),
    ] = 0,
    limit: Annotated[
        int | None,
        Query(
            ge=1,
            description="Most distributions in the page (default CURRICULUM_RUN_PAGE_LIMIT, "
            "at most CURRICULUM_RUN_PAGE_MAX_LIMIT).",
        ),
    ] = None,
) -> Response:
    """Configuration, weights and per-distribution statistics, a page of the run's
    distributions at a time (`total`, `next_offset`)."""
    runs, token = _caller(request)
    return Response(await runs.get(run_id, token, offset, limit), media_type="application/json")


@router.delete("/v1/runs/{run_id}", openapi_extra=_AUTH, response_model=DeleteOut, tags=["runs"])
async def delete_run(run_id: RunIdPath, request: Request) -> DeleteOut:
    """Remove the run and all its keys."""
    runs, token = _caller(request)
    await runs.delete(run_id, token)
    return DeleteOut(run_id=run_id, deleted=True)


@router.post(
    "/v1/runs/{run_id}/plan",
    openapi_extra=_AUTH,
    response_model=PlanOut,
    responses={410: {"model": ErrorOut, "description": "The step is older than the kept plans"}},
    tags=["scheduling"],
)
async def plan(run_id: RunIdPath, body: PlanRequest, request: Request) -> Response:
    """The composition of a step's batch; the first request for a step fixes it."""
    runs, token = _caller(request)
    answer = await runs.plan(run_id, token, body.step, body.batch_size, body.round)
    return Response(answer, media_type="application/json")


_REPORT_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ReportRequest"}}},
}


def _validated(model: type[M], content_type: str | None, raw: bytes) -> M:
    """``raw`` read into ``model`` as FastAPI reads a JSON body (the same checks, the same
    errors): a body that is not JSON-typed is not parsed, an empty one is missing.

    Parsed by pydantic-core straight from the bytes: ``json.loads`` would hold the
    interpreter for the whole parse (a tenth of a second at 8 MiB), stalling the loop's
    thread as if the parse ran on it."""
    try:
        if not raw:
            raise RequestValidationError(
                [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
            )
        if _is_json(content_type):
            return model.model_validate_json(raw)
        return model.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


@router.post(
    "/v1/runs/{run_id}/reports",
    openapi_extra={**_AUTH, "requestBody": _REPORT_BODY},
    response_model=ReportOut,
    responses={
        429: {
            "model": ErrorOut,
            "description": "A large report while its run has one in progress, or while the "
            "service's large-report slots stay taken; retry after Retry-After seconds "
            "(nothing written)",
        }
    },
    tags=["scheduling"],
)
async def report(
    run_id: RunIdPath,
    request: Request,
    weights: Annotated[
        bool, Query(description="Return the new weights (false: weights is null).")
    ] = True,
) -> Response:
    """Report a step's advantages; a repeated ``report_id`` is acknowledged, not counted.

    A large body is parsed and checked in a worker thread, off the loop that answers every
    other tenant's calls, and only while it holds one of the process's few large-report
    slots (429 ``reports_busy`` if its run has one in progress, or none frees up in time)."""
    runs, token = _caller(request)
    raw = await request.body()
    off_loop: OffLoop = request.app.state.off_loop
    content_type = request.headers.get("content-type")
    async with runs.admitted_report(run_id, token, len(raw)):
        body = await off_loop.run(len(raw) // 4, _validated, ReportRequest, content_type, raw)
        return _json(await runs.report(run_id, token, body, with_weights=weights))


@router.get(
    "/v1/runs/{run_id}/history", openapi_extra=_AUTH, response_model=HistoryOut, tags=["runs"]
)
async def history(
    run_id: RunIdPath,
    request: Request,
    limit: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
) -> HistoryOut:
    """Weights and window means per step, oldest first."""
    runs, token = _caller(request)
    return await runs.history(run_id, token, limit)


@router.get(
    "/v1/runs/{run_id}/export", openapi_extra=_AUTH, response_model=Snapshot, tags=["snapshots"]
)
async def export(
    run_id: RunIdPath,
    request: Request,
    history: Annotated[bool, Query(description="Include the weights history.")] = True,
) -> Snapshot:
    """A snapshot of the run's learnt state, to save beside a trainer checkpoint."""
    runs, token = _caller(request)
    return await runs.export(run_id, token, include_history=history)


@router.put(
    "/v1/runs/{run_id}/import",
    openapi_extra=_AUTH,
    response_model=ImportOut,
    responses={
        409: {
            "model": ErrorOut,
            "description": "The snapshot does not fit the run: other distributions, or a "
            "history or strategy state of another shape",
        }
    },
    tags=["snapshots"],
)
async def import_(run_id: RunIdPath, body: Snapshot, request: Request) -> ImportOut:
    """Replace the run's learnt state with a snapshot's (on resume from a checkpoint)."""
    runs, token = _caller(request)
    return await runs.import_(run_id, token, body)


@router.get(
    "/v1/doctor",
    openapi_extra=_AUTH,
    response_model=DoctorOut,
    responses={403: {"model": ErrorOut, "description": "The token is not the operator's"}},
    tags=["health"],
)
async def doctor(request: Request) -> DoctorOut:
    """Redis reachable, scripts loaded, the runs' storage layout, the clock (operator only)."""
    checker: Doctor = request.app.state.doctor
    return await checker.check(_caller(request)[1])


@router.get("/healthz", tags=["health"])
async def healthz() -> dict[str, str]:
    """The process is up (Redis is not asked)."""
    return {"status": "ok"}


@router.get("/readyz", tags=["health"])
async def readyz(request: Request) -> dict[str, str]:
    """Redis answers; 503 otherwise."""
    store: RedisStore = request.app.state.store
    await store.ping()
    return {"status": "ready"}


@router.get(
    "/metrics",
    openapi_extra=_AUTH_IF_SET,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
        403: {
            "model": ErrorOut,
            "description": "The token is neither CURRICULUM_METRICS_TOKEN nor the operator's",
        },
    },
    response_class=Response,
    tags=["health"],
)
async def metrics(request: Request) -> Response:
    """Prometheus metrics of this process (and of every run, with CURRICULUM_RUN_METRICS).
    Needs the metrics token or the operator token where the deployment sets
    CURRICULUM_METRICS_TOKEN or CURRICULUM_RUN_METRICS."""
    require_metrics_reader(_caller(request)[1], request.app.state.settings)
    body = request.app.state.metrics.render()
    gauges: RunGauges | None = request.app.state.run_gauges
    if gauges is not None:
        body += await gauges.render()
    return Response(body, media_type="text/plain; version=0.0.4")
