"""``python -m service`` / ``curriculum-service``: run the service.

Settings come from the environment (see :mod:`service.settings`); flags override them.
With no Redis URL, an embedded Redis is started with its data in ``--data-dir``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from service import __version__
from service.settings import Settings

log = logging.getLogger("service")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m service",
        description=(
            "Curriculum scheduling service for RL post-training. Every flag also has an "
            "environment variable (CURRICULUM_HOST, CURRICULUM_PORT, REDIS_URL, "
            "CURRICULUM_DATA_DIR, ADMIN_TOKEN, CURRICULUM_OPEN_MODE, ...); flags win. It "
            "refuses to start without an operator token (ADMIN_TOKEN) unless open mode is "
            "asked for."
        ),
    )
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8000)")
    parser.add_argument(
        "--redis-url",
        help="Redis to keep state in; unset: start an embedded Redis in --data-dir",
    )
    parser.add_argument(
        "--data-dir", type=Path, help="embedded Redis data folder (default ./curriculum-data)"
    )
    parser.add_argument(
        "--open-mode",
        action="store_const",
        const=True,
        help="with no ADMIN_TOKEN, let anyone who reaches the service create runs "
        "(a single-user machine; refused to start otherwise)",
    )
    parser.add_argument("--log-level", help="uvicorn log level (default info)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def settings_from_args(argv: Sequence[str] | None = None) -> Settings:
    """Environment settings with the given flags applied on top."""
    args = _parser().parse_args(argv)
    overrides: dict[str, Any] = {
        name: value
        for name, value in vars(args).items()
        if value is not None and name in Settings.model_fields
    }
    return Settings().model_copy(update=overrides)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    # uvicorn handles SIGTERM itself, then re-raises it once it has shut down; exiting
    # through SystemExit here lets the `finally` below stop the embedded Redis cleanly.
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the service until interrupted; returns the exit status."""
    settings = settings_from_args(argv)
    import uvicorn

    from service.app import create_app
    from service.embedded_redis import EmbeddedRedis, EmbeddedRedisError
    from service.http_server import server_config

    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s: %(message)s")
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    refusal = settings.refusal()
    if refusal is not None:
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    embedded: EmbeddedRedis | None = None
    if not settings.redis_url:
        try:
            embedded = EmbeddedRedis(settings.data_dir)
            url = embedded.start()
        except EmbeddedRedisError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        log.info("embedded Redis at %s, data in %s", url, embedded.data_dir)
        settings = settings.model_copy(update={"redis_url": url})
    try:
        server = uvicorn.Server(server_config(create_app(settings), settings))
        server.run()
    finally:
        if embedded is not None:
            embedded.stop()
    return 0 if server.started else 3
