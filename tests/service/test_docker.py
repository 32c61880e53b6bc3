"""The compose file and the Dockerfile agree with the code (no Docker engine runs here)."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest

from service.settings import ENV_PREFIX, Settings

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (ROOT / "docker" / "Dockerfile").read_text()


def _env_names() -> set[str]:
    names = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        if alias is not None:
            names |= {str(choice) for choice in alias.choices}  # type: ignore[union-attr]
    return names


def _routes() -> set[str]:
    from service.routes import router

    return {route.path for route in router.routes}  # type: ignore[attr-defined]


def test_compose_env_names_are_settings(compose: dict[str, Any]) -> None:
    env = compose["services"]["service"]["environment"]
    assert set(env) <= _env_names(), set(env) - _env_names()
    assert env["REDIS_URL"].startswith("redis://redis:6379")


_VARIABLE = re.compile(r"\$\{(\w+)(?:(:?)([-?])([^}]*))?\}")


def _interpolate(value: str, env: dict[str, str]) -> str:
    """``value`` as compose reads it with ``env``: ``${VAR}``, ``${VAR:-default}``, and
    ``${VAR:?error}``, which fails (``ValueError``) when VAR is unset or empty."""

    def substitute(match: re.Match[str]) -> str:
        name, colon, kind, arg = match.groups()
        have = env.get(name)
        missing = have is None or (colon == ":" and have == "")
        if kind == "?" and missing:
            raise ValueError(arg)
        if kind == "-" and missing:
            return arg
        return have or ""

    return _VARIABLE.sub(substitute, value.replace("$$", "\0")).replace("\0", "$")


def test_compose_refuses_to_start_without_an_operator_token(compose: dict[str, Any]) -> None:
    """No open mode in the shipped deployment: ADMIN_TOKEN comes from CURRICULUM_ADMIN_TOKEN,
    and compose stops with a message saying so when it is unset or empty."""
    env = compose["services"]["service"]["environment"]
    for unset in ({}, {"CURRICULUM_ADMIN_TOKEN": ""}):
        with pytest.raises(ValueError, match="set CURRICULUM_ADMIN_TOKEN"):
            _interpolate(env["ADMIN_TOKEN"], unset)
    assert _interpolate(env["ADMIN_TOKEN"], {"CURRICULUM_ADMIN_TOKEN": "s3cret+/="}) == "s3cret+/="
    assert not {"CURRICULUM_OPEN_MODE", "CURRICULUM_ADMIN_TOKEN"} & set(env)


def test_compose_publishes_on_loopback_unless_told(compose: dict[str, Any]) -> None:
    """The service is published on 127.0.0.1 by default (CURRICULUM_BIND chooses another
    address); Redis is not published at all."""
    (published,) = compose["services"]["service"]["ports"]
    assert _interpolate(published, {}) == "127.0.0.1:8000:8000"
    assert _interpolate(published, {"CURRICULUM_BIND": "0.0.0.0"}) == "0.0.0.0:8000:8000"
    assert "ports" not in compose["services"]["redis"]


def test_ports_agree(compose: dict[str, Any], dockerfile: str) -> None:
    env = compose["services"]["service"]["environment"]
    port = int(env["CURRICULUM_PORT"])
    assert f"EXPOSE {port}" in dockerfile
    assert f"CURRICULUM_PORT={port}" in dockerfile
    published = compose["services"]["service"]["ports"][0]
    assert published.endswith(f":{port}")
    assert env["CURRICULUM_HOST"] == "0.0.0.0"


def test_health_checks_hit_real_endpoints(compose: dict[str, Any], dockerfile: str) -> None:
    routes = _routes()
    probes = " ".join(compose["services"]["service"]["healthcheck"]["test"])
    probes += dockerfile
    paths = set(re.findall(r"http://127\.0\.0\.1:\d+(/\w+)", probes))
    assert paths and paths <= routes, paths - routes
    assert compose["services"]["service"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "redis-cli" in compose["services"]["redis"]["healthcheck"]["test"]


def test_command_runs_the_service_module(dockerfile: str) -> None:
    cmd_line = next(line for line in dockerfile.splitlines() if line.startswith("CMD"))
    assert " ".join(shlex.split(cmd_line[3:].strip().strip("[]").replace(",", " "))) == (
        "python -m service"
    )
    assert (ROOT / "service" / "__main__.py").exists()


def test_redis_persists_to_a_volume(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    assert redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    # every acknowledged report survives a crash of the host (docs/reliability.md)
    assert redis["command"][redis["command"].index("--appendfsync") + 1] == "always"
    volume, target = redis["volumes"][0].split(":")
    assert target == "/data" and volume in compose["volumes"]


def test_image_is_slim(dockerfile: str) -> None:
    """The image installs the service extra, which must not pull torch."""
    assert 'pip install ".[service]"' in dockerfile
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    service_deps = " ".join(project["optional-dependencies"]["service"] + project["dependencies"])
    assert "torch" not in service_deps and "transformers" not in service_deps
    for line in dockerfile.splitlines():
        if line.startswith("COPY"):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source
