"""LocalService: the service as a child process with its embedded Redis."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from trainer_client import CurriculumClient, LocalService, LocalServiceError


def test_local_service_with_embedded_redis_serves_and_keeps_state(tmp_path: Path) -> None:
    """Started without REDIS_URL it serves runs; its state outlives a clean restart."""
    data_dir = tmp_path / "svc"
    with LocalService(data_dir) as svc:
        assert httpx.get(f"{svc.url}/readyz").json() == {"status": "ready"}
        with CurriculumClient.create_or_attach(svc.url, ["a", "b"], run_id="kept") as client:
            client.report(0, {"a": [1.0, -1.0]})
            token = client.token
    with (
        LocalService(data_dir) as svc,
        CurriculumClient(svc.url, "kept", token) as client,
    ):
        assert client.run_info()["stats"]["a"]["n"] == 2


def test_local_service_that_cannot_start_says_why(tmp_path: Path) -> None:
    """A port already taken makes the service exit; the error carries its log's tail."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(LocalServiceError, match="exited with code") as failed:
            LocalService(tmp_path, port=port).start()
        assert "address already in use" in str(failed.value).lower()
