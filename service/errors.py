"""Domain errors. Each carries the HTTP status and a stable code; the app maps them once."""

from __future__ import annotations

from typing import Any


class CurriculumError(Exception):
    """Base of every error the service reports to a caller."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(CurriculumError):
    """A value is out of range or inconsistent with the run."""

    status = 422
    code = "invalid_input"


class UnknownDistribution(InvalidInput):
    """A report names a distribution the run does not have."""

    code = "unknown_distribution"


class Unauthorized(CurriculumError):
    """No token, or a token that matches nothing."""

    status = 401
    code = "unauthorized"


class Forbidden(CurriculumError):
    """A valid token that does not grant this call."""

    status = 403
    code = "forbidden"


class RunNotFound(CurriculumError):
    """No run has this id."""

    status = 404
    code = "run_not_found"


class RunConflict(CurriculumError):
    """The run exists with another configuration, or a snapshot does not fit it."""

    status = 409
    code = "conflict"


class PlanExpired(CurriculumError):
    """The plan of a step older than the kept plans was asked for."""

    status = 410
    code = "plan_expired"


class RunBudgetExceeded(CurriculumError):
    """The call would let the run keep more in Redis than its budget allows."""

    status = 413
    code = "run_budget_exceeded"


class StoreUnavailable(CurriculumError):
    """Redis cannot be reached; nothing was written."""

    status = 503
    code = "store_unavailable"


class StaleRun(Exception):
    """Internal: the run was deleted and created again since its config was cached."""


class StoreBusy(StoreUnavailable):
    """Every pooled connection to Redis is in use (Redis itself answers); nothing was
    written."""

    code = "store_busy"


class PromptStateBusy(StoreUnavailable):
    """Other plans and reports of the run moved its prompt state each time this call read
    it; nothing was written."""

    code = "prompt_state_busy"


class ReportsBusy(CurriculumError):
    """A large report was refused for now: its run has one in progress, or the process's
    large-report slots stayed taken (service/report_gate.py). Nothing was written."""

    status = 429
    code = "reports_busy"
