"""The operator's calls on a deployment (list, show, export, import, delete runs; doctor),
over the client's HTTP layer: the same timeouts, retries and errors as a trainer's calls."""

from __future__ import annotations

from typing import Any

from trainer_client.client import CurriculumClient
from trainer_client.errors import RunNotFound

_NO_RUN = "-"
"""The run id of the underlying client: the operator's calls name their run in the path."""


class OperatorClient:
    """Blocking calls of the operator (or of a run's token, for that run's calls)."""

    def __init__(
        self, url: str, token: str | None, *, timeout: float = 10.0, retries: int = 2
    ) -> None:
        self._http = CurriculumClient(
            url, _NO_RUN, token, timeout=timeout, retries=retries, backoff=0.2
        )

    def close(self) -> None:
        self._http.close()

    def runs(self, page_size: int = 1000) -> list[dict[str, Any]]:
        """Every run of the deployment (``GET /v1/runs``, page after page)."""
        runs: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": page_size}
        while True:
            page = self._http.call("GET", "/v1/runs", params=params)
            runs += page["runs"]
            if page["next_cursor"] is None:
                return sorted(runs, key=lambda run: run["run_id"])
            params = {"limit": page_size, "cursor": page["next_cursor"]}

    def run(self, run_id: str) -> dict[str, Any]:
        """``GET /v1/runs/{run}``, every page (the answer for all its distributions)."""
        return self._http.run_info(run_id)

    def history(self, run_id: str) -> dict[str, Any]:
        """``GET /v1/runs/{run}/history`` (every entry the service keeps)."""
        data: dict[str, Any] = self._http.call("GET", f"/v1/runs/{run_id}/history")
        return data

    def export(self, run_id: str, *, history: bool = True) -> dict[str, Any]:
        """``GET /v1/runs/{run}/export``."""
        params = None if history else {"history": "false"}
        data: dict[str, Any] = self._http.call("GET", f"/v1/runs/{run_id}/export", params=params)
        return data

    def import_(self, run_id: str, snapshot: dict[str, Any], *, create: bool) -> dict[str, Any]:
        """``PUT /v1/runs/{run}/import``. With ``create``, a run that does not exist is first
        created with the snapshot's configuration (the answer then carries its ``token``)."""
        created = None
        try:
            data: dict[str, Any] = self._http.call("PUT", f"/v1/runs/{run_id}/import", snapshot)
        except RunNotFound:
            if not create:
                raise
            config = snapshot.get("config") or {}
            body = {key: config[key] for key in ("distributions", "strategy", "seed")}
            created = self._http.call("POST", "/v1/runs", {"run_id": run_id, **body})
            data = self._http.call("PUT", f"/v1/runs/{run_id}/import", snapshot)
        if created is not None:
            data = {**data, "created": True, "token": created["token"]}
        return data

    def delete(self, run_id: str) -> dict[str, Any]:
        """``DELETE /v1/runs/{run}``."""
        data: dict[str, Any] = self._http.call("DELETE", f"/v1/runs/{run_id}")
        return data

    def doctor(self) -> dict[str, Any]:
        """The service's liveness, then its checks of Redis (``GET /v1/doctor``)."""
        self._http.call("GET", "/healthz")
        data: dict[str, Any] = self._http.call("GET", "/v1/doctor")
        return data
