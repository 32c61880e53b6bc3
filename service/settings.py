"""Service settings, read from the environment (and ``--flags`` of ``python -m service``).

Every setting has an environment variable ``CURRICULUM_<NAME>``; ``REDIS_URL`` and
``ADMIN_TOKEN`` are also read under those plain names. Nothing is read at import time:
build :class:`Settings` where it is needed.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, model_validator
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
    redis_max_connections: int = Field(
        100,
        ge=1,
        description="Most connections one service process opens to Redis (to each node of a "
        "Cluster); a request that finds all in use gets a 503 store_busy.",
    )
    data_dir: Path = Field(
        Path("curriculum-data"),
        description="Folder of the embedded Redis (its append-only file and log).",
    )
    admin_token: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("ADMIN_TOKEN", "CURRICULUM_ADMIN_TOKEN"),
        description=(
            "Operator token: creating and listing runs require it, and it may read, "
            "import into or delete any run. The service refuses to start without one "
            "unless open_mode is set."
        ),
    )
    open_mode: bool = Field(
        False,
        description="With no admin_token, let anyone who reaches the service create runs "
        "(a single-user machine, the demo). Ignored when admin_token is set.",
    )
    max_connections: int = Field(
        512,
        ge=1,
        description="Most open HTTP connections per process; past it a new connection gets "
        "503 and is closed. Keep it, plus redis_max_connections, below the open-file limit.",
    )
    max_header_bytes: int = Field(
        32 * 1024,
        ge=1024,
        description="Largest request line plus headers, in bytes (else 431, connection closed).",
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Seconds a client has to send a request's headers, from the connection "
        "(or the request's first byte) on; then the connection is closed.",
    )
    body_timeout_s: float = Field(
        60.0,
        gt=0,
        description="Seconds a client has to send a request's body, from the end of its "
        "headers; then the connection is closed.",
    )
    keep_alive_timeout_s: float = Field(
        5.0, gt=0, description="Seconds an idle kept-alive connection stays open."
    )
    max_body_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="Largest request body accepted (else 413)."
    )
    max_distributions: int = Field(20_000, ge=1, description="Most distributions in one run.")
    max_batch_size: int = Field(65_536, ge=1, description="Largest batch size a plan may ask.")
    max_rounds: int = Field(
        64,
        ge=1,
        le=1_000_000,
        description="Generation rounds a step's plans may have: a plan's round is below it.",
    )
    max_report_values: int = Field(
        65_536,
        ge=1,
        description="Most numbers (advantages plus rewards) in one report. A report is one "
        "rank's share of a step (4,096 prompts x 16 rollouts is 65,536); Redis runs each "
        "report's script alone, and parsing one holds the interpreter, so larger reports "
        "make every tenant's calls wait.",
    )
    max_report_distributions: int = Field(
        1024,
        ge=1,
        description="Most distributions one report may name (advantages and rewards "
        "together). The report script costs about 10 us of Redis's single thread per "
        "distribution, during which no other tenant's call runs.",
    )
    large_report_bytes: int = Field(
        256 * 1024,
        ge=1,
        description="A report whose body has at least this many bytes is large: a process "
        "handles at most large_report_slots of them at a time, and one of each run.",
    )
    large_report_slots: int = Field(
        1,
        ge=1,
        description="Large reports one process parses and applies at a time (keep it below "
        "worker_threads); the others wait their turn up to large_report_wait_s.",
    )
    large_report_wait_s: float = Field(
        5.0,
        ge=0,
        description="Seconds a large report waits for a slot before it is refused (429 "
        "reports_busy with Retry-After).",
    )
    max_prompts: int = Field(
        1_048_576,
        ge=1,
        le=2**29,
        description="Most prompts a run may declare, all distributions together (one byte "
        "of selection state each in Redis, read whole when a plan is drawn, unless the "
        "process keeps it: state_cache_bytes).",
    )
    max_report_groups: int = Field(
        65_536, ge=1, description="Most groups (prompts named) in one report."
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
    run_page_limit: int = Field(
        1000,
        ge=1,
        description="Distributions in a page of GET /v1/runs/{run} when the caller gives no "
        "limit (the rest: next_offset).",
    )
    run_page_max_limit: int = Field(
        5000,
        ge=1,
        description="Most distributions a caller may ask for in one page of "
        "GET /v1/runs/{run} (a larger limit: 422).",
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
    state_cache_bytes: int = Field(
        64 * 1024 * 1024,
        ge=0,
        description="Bytes of runs' weights and prompt state (a byte a prompt) each process "
        "keeps as it last saw them, to draw a new step's plan in one Redis call instead of "
        "three (the script checks they are current); 0: none kept.",
    )
    run_metrics: bool = Field(
        False,
        description="Add per-run gauges to /metrics (weights, window means, counts, rewards: "
        "one series per run and distribution, read from Redis at each scrape). They name "
        "every run and distribution, so /metrics then needs metrics_token or the operator "
        "token, and one of them must be set.",
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="Token that may read /metrics (and nothing else), for the scraper: "
        "Authorization: Bearer. Set, /metrics needs it or the operator token; unset, "
        "/metrics is open unless run_metrics is on.",
    )
    retry_after_s: int = Field(
        1, ge=1, description="Retry-After sent with a 503 and a 429 reports_busy."
    )
    log_level: str = Field("info", description="uvicorn log level.")

    @model_validator(mode="after")
    def _run_metrics_need_a_token(self) -> Settings:
        if self.run_metrics and self.metrics_token is None and self.admin_token is None:
            raise ValueError(
                "CURRICULUM_RUN_METRICS shows every run's id and distribution names on "
                "/metrics: set CURRICULUM_METRICS_TOKEN (the scraper's token) or ADMIN_TOKEN, "
                "which /metrics then requires"
            )
        return self

    def refusal(self) -> str | None:
        """Why the service must not start with these settings (neither an operator token
        nor open mode), or ``None``."""
        if self.admin_token is None and not self.open_mode:
            return (
                "no operator token: set ADMIN_TOKEN to a secret (creating and listing runs "
                "need it), or set CURRICULUM_OPEN_MODE=true (--open-mode) to let anyone who "
                "reaches this service create runs"
            )
        return None
