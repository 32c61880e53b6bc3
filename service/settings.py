"""Service settings, read from the environment (and ``--flags`` of ``python -m service``).

Every setting has an environment variable ``CURRICULUM_<NAME>``; ``REDIS_URL`` and
``ADMIN_TOKEN`` are also read under those plain names. Nothing is read at import time:
build :class:`Settings` where it is needed.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "CURRICULUM_"


class Settings(BaseSettings):
    """How one service process runs. Per-run constants (window, c, tau) live in each run."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8000, ge=0, le=65535, description="Port to listen on.")
    redis_url: str | None = Field(
        None,
        validation_alias=AliasChoices("REDIS_URL", "CURRICULUM_REDIS_URL"),
        description=(
            "Redis to keep all state in, e.g. redis://localhost:6379/0. Unset: "
            "`python -m service` starts an embedded Redis with its data in data_dir."
        ),
    )
    redis_cluster: bool = Field(
        False, description="Treat redis_url as a Redis Cluster node (runs sharded by slot)."
    )
    redis_timeout_s: float = Field(
        5.0, gt=0, description="Connect and command timeout for Redis, in seconds."
    )
    data_dir: Path = Field(
        Path("curriculum-data"),
        description="Folder of the embedded Redis (its append-only file and log).",
    )
    admin_token: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("ADMIN_TOKEN", "CURRICULUM_ADMIN_TOKEN"),
        description=(
            "Operator token. When set, creating a run requires it, and it may read, "
            "import into or delete any run. Unset: anyone may create runs."
        ),
    )
    max_body_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="Largest request body accepted (else 413)."
    )
    max_distributions: int = Field(20_000, ge=1, description="Most distributions in one run.")
    max_batch_size: int = Field(65_536, ge=1, description="Largest batch size a plan may ask.")
    max_report_values: int = Field(
        1_048_576, ge=1, description="Most numbers (advantages plus rewards) in one report."
    )
    plan_retention: int = Field(
        1024, ge=1, description="Plans are kept for this many steps below the newest planned."
    )
    report_id_retention: int = Field(
        10_000, ge=1, description="How many recent report ids a run remembers for dedup."
    )
    history_limit: int = Field(1000, ge=1, description="History entries (steps) kept per run.")
    history_max_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1024,
        description="Byte budget of a run's history; runs with many distributions keep fewer "
        "entries (at least 10).",
    )
    run_memory_budget_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024 * 1024,
        description="Most a run may keep in Redis (windows, statistics, config, history, "
        "report ids, rank activity and kept plans, with Redis's own overheads): a run whose "
        "bounds add up to more is refused at creation (413 run_budget_exceeded), so no "
        "sequence of calls with its token can pass it.",
    )
    plans_max_bytes: int = Field(
        4 * 1024 * 1024,
        ge=64 * 1024,
        description="Byte budget of a run's kept plans (part of run_memory_budget_bytes): the "
        "oldest steps' plans are dropped to make room; a plan that does not fit beside its own "
        "step's and newer ones is refused (413 run_budget_exceeded).",
    )
    max_ranks: int = Field(
        16_384,
        ge=1,
        le=2**20,
        description="Ranks a report may name (0 to max_ranks - 1); each one's last report is "
        "kept for the run's activity.",
    )
    worker_threads: int = Field(
        4,
        ge=1,
        description="Threads that parse large reports and render large answers off the event "
        "loop (at most this many at a time), so one tenant's large call does not stall the "
        "others'.",
    )
    reward_ema_alpha: float = Field(
        0.1,
        gt=0,
        le=1,
        description="Reward moving-average weight of runs created before it became the "
        "per-run strategy parameter reward_alpha (new runs ignore it).",
    )
    config_cache_size: int = Field(
        4096, ge=0, description="Run configs cached per process (validated on every write)."
    )
    run_metrics: bool = Field(
        False,
        description="Add per-run gauges to /metrics (weights, window means, counts, rewards: "
        "one series per run and distribution, read from Redis at each scrape).",
    )
    retry_after_s: int = Field(1, ge=1, description="Retry-After sent with a 503.")
    log_level: str = Field("info", description="uvicorn log level.")
