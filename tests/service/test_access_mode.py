"""Who may create runs: a deployment needs an operator token, or open mode asked for by name."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from local_processes import free_port
from service.app import create_app
from service.settings import Settings

ACCESS_VARS = ("ADMIN_TOKEN", "CURRICULUM_ADMIN_TOKEN", "CURRICULUM_OPEN_MODE")


def _settings(**update: object) -> Settings:
    base = {"redis_url": "redis://127.0.0.1:1/0", "admin_token": None, "open_mode": False}
    return Settings(_env_file=None).model_copy(update={**base, **update})


def test_python_m_service_refuses_to_start_without_a_token_or_open_mode(tmp_path: Path) -> None:
    """It exits 2 with what to set, before it starts the embedded Redis."""
    env = {k: v for k, v in os.environ.items() if k not in ACCESS_VARS and "REDIS_URL" not in k}
    data = tmp_path / "data"
    out = subprocess.run(
        [sys.executable, "-m", "service", "--port", str(free_port()), "--data-dir", str(data)],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2
    assert "no operator token: set ADMIN_TOKEN" in out.stderr
    assert "CURRICULUM_OPEN_MODE=true" in out.stderr
    assert not data.exists()


def test_create_app_refuses_the_same_settings() -> None:
    with pytest.raises(ValueError, match="no operator token"):
        create_app(_settings())


def test_open_mode_warns_loudly_and_a_token_silences_it(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="service"):
        create_app(_settings(open_mode=True))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("OPEN MODE")
    assert "anyone who can reach 127.0.0.1:8000 may create runs" in warnings[0]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="service"):
        create_app(_settings(open_mode=True, admin_token=SecretStr("op")))
    assert [r.levelno for r in caplog.records] == [logging.INFO]
    assert "CURRICULUM_OPEN_MODE is ignored" in caplog.records[0].getMessage()
