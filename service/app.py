"""The FastAPI application: ``create_app(settings)``, its lifespan and its error mapping."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.constants import REF_TEMPLATE
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import __version__
from service.doctor import Doctor
from service.errors import CurriculumError, ReportsBusy, StoreUnavailable
from service.limits import BodySizeLimit
from service.metrics import Metrics
from service.off_loop import OffLoop
from service.routes import BEARER_SCHEME, router
from service.run_gauges import RunGauges
from service.run_index import RunIndex
from service.runs import RunService
from service.schemas import ReportRequest
from service.settings import Settings
from service.store.redis_store import open_store
from service.ui_routes import ui_routes

log = logging.getLogger("service")

DESCRIPTION = """\
Decides, step by step, how much of each prompt distribution the next batch of an RL
post-training run takes, from the live learning signal (DUMP: mean absolute advantage,
UCB bandit, softmax). All state lives in Redis; any replica serves any run.
"""


def _error(status: int, code: str, message: str, details: Any = None, **headers: str) -> Any:
    body = {"error": {"code": code, "message": message, "details": details}}
    return JSONResponse(body, status_code=status, headers=headers or None)


def _validation_response(exc: RequestValidationError) -> Any:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        first = next(e for e in errors if e.get("type") == "json_invalid")
        reason = first.get("ctx", {}).get("error", "")
        return _error(400, "malformed_json", f"the request body is not valid JSON: {reason}")
    if any(tuple(e.get("loc", ())) == ("body",) for e in errors):
        return _error(400, "malformed_body", "the request body must be a JSON object")
    details = [
        {"loc": [str(p) for p in e.get("loc", ())], "message": e.get("msg", "")} for e in errors
    ]
    first = details[0]
    where = ".".join(first["loc"][:6])
    if first["loc"][:2] == ["path", "run_id"]:
        message = "invalid run id: use 1-128 of A-Z a-z 0-9 . _ -, starting with a letter or digit"
    else:
        message = f"{where}: {first['message']}"
        if len(details) > 1:
            message += f" (and {len(details) - 1} more problem(s), see details)"
    return _error(422, "invalid_input", message, details[:20])


def _unreadable_body(cause: BaseException) -> str:
    """Why a JSON body could not be read (FastAPI raises a bare 400 from the error)."""
    if isinstance(cause, UnicodeDecodeError):
        reason = f"it is not UTF-8 text ({cause.reason} at byte {cause.start})"
    elif isinstance(cause, RecursionError):
        reason = "it nests arrays or objects too deeply"
    else:
        reason = f"{type(cause).__name__}: {cause}"
    return f"the request body is not valid JSON: {reason}"


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path (a path can have one route per
    method, and Starlette's 405 names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


def _install_error_handlers(app: FastAPI, settings: Settings, metrics: Metrics) -> None:
    @app.exception_handler(CurriculumError)
    async def domain_error(_: Request, exc: CurriculumError) -> Any:
        headers: dict[str, str] = {}
        if isinstance(exc, StoreUnavailable):
            metrics.store_errors.inc()
        if isinstance(exc, StoreUnavailable | ReportsBusy):
            headers["Retry-After"] = str(settings.retry_after_s)
        if exc.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return _error(exc.status, exc.code, exc.message, exc.details, **headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> Any:
        return _validation_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Any:
        if exc.status_code == 404:
            message = f"no such endpoint: {request.method} {request.url.path}; see /docs"
            return _error(404, "not_found", message)
        if exc.status_code == 400 and exc.__cause__ is not None:
            # FastAPI's 400 raised from the error that stopped it reading a JSON body
            return _error(400, "malformed_json", _unreadable_body(exc.__cause__))
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return _error(exc.status_code, "http_error", str(exc.detail), **headers)


class _RequestMetrics:
    """Counts requests and their latency by route template (not by raw path)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # the labelled children, looked up once per (route, method, status): labels()
        # takes a lock and builds a key on every call
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            key = (template, scope["method"], status)
            children = self._children.get(key)
            if children is None:
                children = (
                    self.metrics.requests.labels(template, scope["method"], str(status)),
                    self.metrics.latency.labels(template),
                )
                self._children[key] = children
            children[0].inc()
            children[1].observe(time.perf_counter() - start)


def _complete_openapi(app: FastAPI, settings: Settings) -> None:
    """Add to the generated schema what it cannot know: the ``bearer`` security scheme that
    the run routes name (routes.py reads the header itself, so FastAPI does not add it), and
    the limits this deployment's settings enforce."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            components = schema.setdefault("components", {})
            components.setdefault("securitySchemes", {})[BEARER_SCHEME] = {
                "type": "http",
                "scheme": "bearer",
                "description": "The run's token (returned once by POST /v1/runs), or the "
                "operator token (ADMIN_TOKEN) where the deployment sets one; for /metrics, "
                "CURRICULUM_METRICS_TOKEN.",
            }
            models = components.setdefault("schemas", {})
            # the report's body is parsed off the loop (routes.py), so FastAPI does not list
            # its model: its schema, as FastAPI would give it
            report = ReportRequest.model_json_schema(ref_template=REF_TEMPLATE)
            models.update(report.pop("$defs", {}))
            models["ReportRequest"] = report
            groups = report["properties"]["groups"]["anyOf"][0]
            groups["maxItems"] = settings.max_report_groups
            plan = models["PlanRequest"]["properties"]
            plan["batch_size"]["maximum"] = settings.max_batch_size
            plan["round"]["maximum"] = settings.max_rounds - 1
            create = models["CreateRunRequest"]["properties"]["distributions"]
            create["maxItems"] = settings.max_distributions
            rank = models["ReportRequest"]["properties"]["rank"]
            rank["anyOf"][0] = {"type": "integer", "minimum": 0, "maximum": settings.max_ranks - 1}
            for param in schema["paths"]["/v1/runs/{run_id}"]["get"]["parameters"]:
                if param["name"] == "limit":
                    param["schema"]["anyOf"][0]["maximum"] = settings.run_page_max_limit
                    param["schema"]["default"] = settings.run_page_limit
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _check_access(settings: Settings) -> None:
    """Refuse to build an app nobody guards unless open mode was asked for; warn loudly
    when it was."""
    refusal = settings.refusal()
    if refusal is not None:
        raise ValueError(refusal)
    if settings.admin_token is not None:
        if settings.open_mode:
            log.info("CURRICULUM_OPEN_MODE is ignored: ADMIN_TOKEN is set")
        return
    log.warning(
        "OPEN MODE (CURRICULUM_OPEN_MODE=true, no ADMIN_TOKEN): anyone who can reach "
        "%s:%d may create runs, of any size the limits allow, under any free run id; "
        "set ADMIN_TOKEN on a shared machine",
        settings.host,
        settings.port,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service app. Connects to ``settings.redis_url`` when it starts, not before.

    ``ValueError`` for settings it cannot run with: no Redis, or neither an operator token
    nor open mode."""
    settings = settings or Settings()
    if not settings.redis_url:
        raise ValueError(
            "no Redis configured: set REDIS_URL, or run `python -m service`, which starts "
            "an embedded Redis when REDIS_URL is unset"
        )
    _check_access(settings)
    redis_url = settings.redis_url
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_store(
            redis_url,
            cluster=settings.redis_cluster,
            timeout_s=settings.redis_timeout_s,
            max_connections=settings.redis_max_connections,
        ) as store:
            app.state.store = store
            off_loop = OffLoop(settings.worker_threads)
            app.state.off_loop = off_loop
            app.state.runs = RunService(store, settings, metrics, off_loop)
            app.state.run_index = RunIndex(store, settings)
            app.state.doctor = Doctor(store, settings)
            app.state.run_gauges = RunGauges(store) if settings.run_metrics else None
            # Everything made so far (modules, FastAPI's and pydantic's schemas: ~75,000
            # objects) lives as long as the process: keep it out of the cyclic collector's
            # passes, which otherwise walk it again and again (+3 % kept plans/s at c = 1,
            # +7 % at c = 8, docs/benchmarks.md).
            gc.collect()
            gc.freeze()
            yield

    app = FastAPI(
        title="Curriculum scheduler",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # The routes go straight into the app's router: include_router() would add a layer
        # that FastAPI walks on every request to find the route (about 50 us of a kept
        # plan's CPU, docs/benchmarks.md).
        routes=[*router.routes, *ui_routes()],
        # No redirect from "/path/" to "/path": Starlette builds its Location from the
        # request's Host header, which any client sets; such a path is a 404.
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    _install_error_handlers(app, settings, metrics)
    _complete_openapi(app, settings)
    app.add_middleware(_RequestMetrics, metrics=metrics)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    return app
