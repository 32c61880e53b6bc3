"""The floor for the service's endpoints: FastAPI + uvicorn, one Redis round trip, no logic.

``python -m benchmarks.bare_app --port P`` (``REDIS_URL`` in the environment) serves
``POST /bare`` with a small JSON body validated by pydantic, like ``/plan``'s; it makes one
``HGET`` and returns a small JSON object. uvicorn runs with the settings the service uses
(``uvicorn.run`` defaults: uvloop and httptools when installed).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
import uvicorn
from fastapi import FastAPI, Request
from pydantic import BaseModel, Field

KEY = "bench:bare"


class BareRequest(BaseModel):
    """Shaped like a plan request."""

    step: int = Field(ge=0)
    batch_size: int = Field(ge=1)


class BareOut(BaseModel):
    """A small answer."""

    step: int
    value: str | None


def create_app(redis_url: str) -> FastAPI:
    """The bare app, connected to ``redis_url`` while it runs."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = aioredis.from_url(redis_url, socket_timeout=5.0, decode_responses=False)
        await client.hset(KEY, "v", "bare")
        app.state.redis = client
        yield
        await client.aclose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/bare", response_model=BareOut)
    async def bare(body: BareRequest, request: Request) -> BareOut:
        value = await request.app.state.redis.hget(KEY, "v")
        return BareOut(step=body.step, value=value.decode() if value else None)

    return app


def main() -> None:
    """Serve the bare app until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bare_app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    app = create_app(os.environ["REDIS_URL"])
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
