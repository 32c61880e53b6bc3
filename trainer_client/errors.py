"""Errors the curriculum client raises: one base class, one subclass per kind of failure.

A 4xx answer becomes a :class:`RequestRejected` subclass carrying the HTTP status and the
service's error ``code`` and ``message`` (the service answers ``{"error": {"code",
"message", "details"}}``); such calls are never retried. :class:`ServiceUnavailable` means
the service could not be reached or kept failing after the retries; ``plan`` and ``report``
never raise it (they fall back to local scheduling), the other calls do.
"""

from __future__ import annotations

from typing import Any


class CurriculumError(Exception):
    """Base of every error of the curriculum client."""


class ServiceUnavailable(CurriculumError):
    """The service could not be reached, timed out, or answered 5xx after every retry."""


class RequestRejected(CurriculumError):
    """The service refused the request (a 4xx); repeating it unchanged will not help.

    ``status`` is the HTTP status, ``code`` the service's stable error code (e.g.
    ``unknown_distribution``), ``message`` its explanation and ``details`` any extra data.
    """

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details


class InvalidRequest(RequestRejected):
    """400, 413 or 422: malformed or out-of-range input (unknown distribution, NaN, ...)."""


class AuthError(RequestRejected):
    """401 or 403: no token; a token that grants no such run (another run's, an unknown one,
    or a run that does not exist any more: the service answers all alike); creating a run
    without the operator token where one is required."""


class RunNotFound(RequestRejected):
    """404: no run has this id (deleted, or never created); answered to the operator's token
    (any other token gets :class:`AuthError` for a run it does not grant)."""


class RunConflict(RequestRejected):
    """409: the run exists with another configuration, or a snapshot does not fit it."""


class PlanExpired(RequestRejected):
    """410: the plan of a step older than the service keeps was asked for."""


_BY_STATUS: dict[int, type[RequestRejected]] = {
    400: InvalidRequest,
    401: AuthError,
    403: AuthError,
    404: RunNotFound,
    409: RunConflict,
    410: PlanExpired,
    413: InvalidRequest,
    422: InvalidRequest,
}


def rejection(status: int, body: Any) -> RequestRejected:
    """The exception for a 4xx answer with JSON ``body`` (any shape; non-JSON gives None)."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = str(error.get("code", "http_error"))
        message = str(error.get("message", ""))
        details = error.get("details")
    else:
        code, message, details = "http_error", f"the service answered HTTP {status}", body
    return _BY_STATUS.get(status, RequestRejected)(status, code, message, details)
