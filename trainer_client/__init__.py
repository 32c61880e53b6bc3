"""What a trainer imports to be scheduled by the curriculum service.

- :class:`CurriculumClient` / :class:`AsyncCurriculumClient`: HTTP clients of one run, with
  timeouts, retries over one or several replicas, and a local fallback (same scheduling
  math, reports buffered and replayed with their ids) so that an outage of the service never
  stops training.
- :class:`CurriculumBatchSampler` (needs torch; imported on first use): a batch sampler
  whose batches follow the run's plans, sharded across data-parallel ranks.
- :class:`LocalService`: the service as a child process on this machine.

Importing this package pulls in numpy, httpx and ``curriculum_core`` (the scheduling core,
numpy only), never the service, FastAPI or a Redis client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trainer_client.client import (
    AsyncCurriculumClient,
    CurriculumClient,
    Plan,
    ReportResult,
    TokenRequired,
)
from trainer_client.errors import (
    AuthError,
    CurriculumError,
    InvalidRequest,
    PlanExpired,
    RequestRejected,
    RunConflict,
    RunNotFound,
    ServiceUnavailable,
)
from trainer_client.local_service import LocalService, LocalServiceError

if TYPE_CHECKING:
    from trainer_client.sampler import CurriculumBatchSampler

__all__ = [
    "AsyncCurriculumClient",
    "AuthError",
    "CurriculumBatchSampler",
    "CurriculumClient",
    "CurriculumError",
    "InvalidRequest",
    "LocalService",
    "LocalServiceError",
    "Plan",
    "PlanExpired",
    "ReportResult",
    "RequestRejected",
    "RunConflict",
    "RunNotFound",
    "ServiceUnavailable",
    "TokenRequired",
]


def __getattr__(name: str) -> Any:
    # The sampler needs torch; import it only when asked for, so trainers without torch
    # (or scripts that only talk to the service) do not pay for it.
    if name == "CurriculumBatchSampler":
        from trainer_client.sampler import CurriculumBatchSampler

        return CurriculumBatchSampler
    raise AttributeError(f"module 'trainer_client' has no attribute {name!r}")
