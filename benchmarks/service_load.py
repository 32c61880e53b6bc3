"""Load benchmark of the curriculum service: plan and report latency and throughput against
their floors, Redis memory per run, the scheduler's overhead per training step, and what
declaring prompts costs (plans, reports with groups, a million-prompt run's memory).

Starts its own throwaway ``redis-server``, the service (``python -m service``) and a bare
FastAPI endpoint (:mod:`benchmarks.bare_app`) as separate processes on loopback, and drives
them from this process with a bounded asyncio HTTP driver (:mod:`benchmarks.load`); the
trainer's own httpx client (``trainer_client.CurriculumClient``) measures the cost per step.

    python -m benchmarks.service_load --out bench.json     # full run, several minutes
    python -m benchmarks.service_load --smoke              # tiny sizes, a few seconds (CI)
    python -m benchmarks.service_load --prompts            # only the prompt section

Prints a table per section and writes everything as JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import redis
import redis.asyncio as aioredis

from benchmarks.load import (
    LoadResult,
    RawHttp,
    RequestMaker,
    client,
    closed_loop,
    open_loop,
    percentile,
)
from benchmarks.procs import HttpApp, cpu_seconds
from curriculum_core import DumpUcb, RunStats, compose_batch, plan_rng, weights
from local_processes import RedisServer
from service.budget import history_capacity
from service.settings import Settings
from service.store.keys import RUN_KEY_NAMES, run_keys
from trainer_client import CurriculumClient

LOG_KEYS = ("reports", "plans", "plan_steps", "history", "journal")
"""Bounded logs; every other key of a run is live state."""
BATCH = 128
"""Prompts per plan (the 128 of a 128 x 16 report)."""
PROMPTS, ROLLOUTS = 128, 16
FILL_VALUES_PER_REPORT = 150_000
"""Values per report while filling windows (keeps each body near 1 MB)."""


@dataclass(frozen=True)
class Sizes:
    """How much each section measures."""

    ks: tuple[int, ...]
    concurrencies: tuple[int, ...]
    requests: int
    report_requests: int
    level_max_s: float
    warmup: int
    rate: float
    rate_s: float
    rate_ks: tuple[int, ...]
    windows: tuple[int, ...]
    w_requests: int
    pair_rounds: int
    pair_requests: int
    memory_cases: tuple[tuple[int, int], ...]
    memory_plans: int
    memory_reports: int
    client_ks: tuple[int, ...]
    client_steps: int
    step_time_s: float
    math_repeats: int
    redis_requests: int
    prompt_counts: tuple[int, ...]
    prompt_concurrencies: tuple[int, ...]
    prompt_requests: int
    prompt_report_requests: int
    prompt_pair_concurrency: int


FULL = Sizes(
    ks=(12, 1000, 10_000),
    concurrencies=(1, 8, 64),
    requests=3000,
    report_requests=600,
    level_max_s=8.0,
    warmup=100,
    rate=500.0,
    rate_s=8.0,
    rate_ks=(12, 10_000),
    windows=(30, 300, 3000),
    w_requests=2000,
    pair_rounds=8,
    pair_requests=1500,
    memory_cases=((12, 30), (12, 300), (12, 3000), (1000, 300), (10_000, 300), (1000, 3000)),
    memory_plans=50,
    memory_reports=200,
    client_ks=(6, 12),
    client_steps=300,
    step_time_s=0.25,
    math_repeats=2000,
    redis_requests=20_000,
    prompt_counts=(0, 1000, 83_334),
    prompt_concurrencies=(1, 8),
    prompt_requests=2000,
    prompt_report_requests=600,
    prompt_pair_concurrency=8,
)

SMOKE = Sizes(
    ks=(12,),
    concurrencies=(1, 4),
    requests=40,
    report_requests=20,
    level_max_s=2.0,
    warmup=5,
    rate=100.0,
    rate_s=0.5,
    rate_ks=(12,),
    windows=(30, 300),
    w_requests=20,
    pair_rounds=2,
    pair_requests=20,
    memory_cases=((12, 30),),
    memory_plans=5,
    memory_reports=5,
    client_ks=(6,),
    client_steps=5,
    step_time_s=0.25,
    math_repeats=20,
    redis_requests=200,
    prompt_counts=(0, 10, 1000),
    prompt_concurrencies=(1, 4),
    prompt_requests=30,
    prompt_report_requests=10,
    prompt_pair_concurrency=4,
)


# -- runs over HTTP ---------------------------------------------------------------------------


def names_of(k: int) -> list[str]:
    """Distribution names ``d00000 ...``."""
    return [f"d{i:05d}" for i in range(k)]


def create_run(base_url: str, run_id: str, k: int, window: int, prompts: int = 0) -> str:
    """Create a dump-ucb run with ``k`` distributions and window ``window``, declaring
    ``prompts`` prompts per distribution (0: none); its token."""
    body: dict[str, Any] = {
        "run_id": run_id,
        "distributions": names_of(k),
        "strategy": {"name": "dump-ucb", "window": window},
        "seed": 0,
    }
    if prompts:
        body["prompts"] = {name: prompts for name in names_of(k)}
    response = httpx.post(f"{base_url}/v1/runs", json=body, timeout=60.0)
    response.raise_for_status()
    token: str = response.json()["token"]
    return token


def report_body_maker(
    run_id: str, k: int, seed: int = 0, *, with_weights: bool = True, prompts: int = 0
) -> RequestMaker:
    """Reports of ``PROMPTS x ROLLOUTS`` advantages; prompt ``p`` from one distribution.

    Prompts are spread evenly over the distributions (``p * k // PROMPTS``, or ``p % k``
    when ``k < PROMPTS``). With ``prompts`` (per distribution, in a run that declares them)
    the report also names each prompt's group: a prompt id drawn in ``0..prompts-1`` and
    its ``ROLLOUTS`` rewards, all 0 for a third of the groups, all 1 for another third (the
    zero-variance groups prompt selection learns from), mixed for the rest; the advantages
    are the same values either way. Only the report id changes between requests, so the
    body is built once around it.
    """
    rng = np.random.default_rng(seed)
    group_rng = np.random.default_rng(seed + 1)
    names = names_of(k)
    advantages: dict[str, list[float]] = {}
    groups: list[dict[str, Any]] = []
    for p in range(PROMPTS):
        name = names[p % k if k < PROMPTS else p * k // PROMPTS]
        values = np.round(rng.normal(size=ROLLOUTS), 4).tolist()
        advantages.setdefault(name, []).extend(values)
        if prompts:
            kind = p % 3
            rewards = group_rng.integers(0, 2, ROLLOUTS) if kind == 2 else np.full(ROLLOUTS, kind)
            prompt = int(group_rng.integers(0, prompts))
            groups.append({"distribution": name, "prompt": prompt, "rewards": rewards.tolist()})
    marker = "@@REPORT_ID@@"
    body: dict[str, Any] = {"report_id": marker, "step": 0, "advantages": advantages}
    if groups:
        body["groups"] = groups
    text = json.dumps(body)
    head, tail = (part.encode() for part in text.split(marker))
    path = f"/v1/runs/{run_id}/reports" + ("" if with_weights else "?weights=false")
    return lambda i: (path, head + f"{run_id}-{i}".encode() + tail)


def plan_body_maker(run_id: str, *, new_step: bool) -> RequestMaker:
    """Plan requests: all for step 0 (``new_step=False``, the kept plan) or each a new step."""
    path = f"/v1/runs/{run_id}/plan"
    if new_step:
        return lambda i: (path, b'{"step": %d, "batch_size": %d}' % (i + 1, BATCH))
    kept = b'{"step": 0, "batch_size": %d}' % BATCH
    return lambda i: (path, kept)


def fill_windows(base_url: str, run_id: str, token: str, k: int, window: int) -> int:
    """Report ``window`` values to every distribution (so every window is full); reports sent.

    Each report covers a slice of the distributions and is its own step, so the history
    gets one entry per report.
    """
    per_report = max(1, FILL_VALUES_PER_REPORT // window)
    rng = np.random.default_rng(1)
    names = names_of(k)
    sent = 0
    with httpx.Client(base_url=base_url, timeout=120.0) as http:
        for start in range(0, k, per_report):
            chunk = names[start : start + per_report]
            values = np.round(rng.normal(size=(len(chunk), window)), 3)
            body = {
                "report_id": f"fill-{run_id}-{start}",
                "step": sent,
                "advantages": {name: row.tolist() for name, row in zip(chunk, values, strict=True)},
            }
            response = http.post(
                f"/v1/runs/{run_id}/reports",
                json=body,
                headers={"authorization": f"Bearer {token}"},
            )
            response.raise_for_status()
            sent += 1
    return sent


# -- measurements -----------------------------------------------------------------------------


async def measure_closed(
    app: HttpApp,
    token: str | None,
    make: RequestMaker,
    sizes: Sizes,
    concurrency: int,
    requests: int,
    first: int = 0,
) -> dict[str, Any]:
    """Warm up, then one closed-loop measurement at ``concurrency``.

    ``cpu_us`` is the server process's CPU time per request (user + system), which other
    jobs on a shared machine disturb far less than throughput; ``redis_us`` is Redis's
    main-thread CPU time per request (``INFO cpu``: commands, Lua scripts and the network
    I/O of the requests). ``INFO commandstats`` would count each command a script calls
    twice, inside the script's time and on its own.
    """
    async with client(app.url, token, concurrency) as http:
        await closed_loop(
            http, make, concurrency=concurrency, requests=sizes.warmup, max_s=5.0, first=first
        )
        cpu_before = cpu_seconds(app.pid)
        redis_before = redis_cpu_seconds(app.redis_url)
        result = await closed_loop(
            http,
            make,
            concurrency=concurrency,
            requests=requests,
            max_s=sizes.level_max_s,
            first=first + sizes.warmup,
        )
        cpu = cpu_seconds(app.pid) - cpu_before
        redis_usec = 1e6 * (redis_cpu_seconds(app.redis_url) - redis_before)
    served = max(1, len(result.latencies_ms) + result.errors)
    return {
        "concurrency": concurrency,
        **result.summary(),
        "cpu_us": round(1e6 * cpu / served),
        "redis_us": round(redis_usec / served),
    }


def redis_cpu_seconds(url: str) -> float:
    """CPU seconds (user + system) of Redis's main thread since it started."""
    r = redis.Redis.from_url(url)
    try:
        info = r.info("cpu")
    finally:
        r.close()
    return float(info["used_cpu_user_main_thread"]) + float(info["used_cpu_sys_main_thread"])


async def measure_open(
    app: HttpApp, token: str | None, make: RequestMaker, sizes: Sizes, first: int = 0
) -> dict[str, Any]:
    """Warm up, then one open-loop measurement at ``sizes.rate`` requests/s."""
    async with client(app.url, token, 64) as http:
        await closed_loop(http, make, concurrency=1, requests=sizes.warmup, max_s=5.0, first=first)
        result = await open_loop(
            http,
            make,
            rate=sizes.rate,
            duration_s=sizes.rate_s,
            max_in_flight=64,
            first=first + sizes.warmup,
        )
    return {"rate": sizes.rate, **result.summary()}


async def redis_floor(url: str, sizes: Sizes) -> list[dict[str, Any]]:
    """redis-py (asyncio) ``HGET`` round trips at each concurrency, one connection per worker."""
    rows = []
    for concurrency in sizes.concurrencies:
        r = aioredis.from_url(url, max_connections=concurrency)
        await r.hset("bench:floor", "v", "x")
        result = LoadResult()
        remaining = sizes.redis_requests

        async def worker(r: aioredis.Redis = r, result: LoadResult = result) -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                t0 = time.perf_counter()
                await r.hget("bench:floor", "v")
                result.latencies_ms.append((time.perf_counter() - t0) * 1000)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.wall_s = time.perf_counter() - start
        await r.aclose()
        rows.append({"concurrency": concurrency, **result.summary()})
    return rows


def redis_benchmark(port: int, sizes: Sizes) -> list[dict[str, Any]]:
    """``redis-benchmark -t get`` (C client) at each concurrency: requests/s and p50 in ms."""
    rows = []
    for concurrency in sizes.concurrencies:
        try:
            out = subprocess.run(
                [
                    "redis-benchmark",
                    "-p",
                    str(port),
                    "-t",
                    "get",
                    "--csv",
                    "-n",
                    str(sizes.redis_requests),
                    "-c",
                    str(concurrency),
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return []
        lines = [line.replace('"', "").split(",") for line in out.strip().splitlines()]
        header, values = lines[0], lines[-1]
        row = dict(zip(header, values, strict=False))
        rows.append(
            {
                "concurrency": concurrency,
                "rps": float(row["rps"]),
                "p50_ms": float(row.get("p50_latency_ms", "nan")),
                "p99_ms": float(row.get("p99_latency_ms", "nan")),
            }
        )
    return rows


def math_floor(sizes: Sizes) -> list[dict[str, Any]]:
    """In-process scheduling math per K: ``weights`` (report path) and ``compose_batch`` (plan)."""
    rows = []
    strategy = DumpUcb()
    rng = np.random.default_rng(0)
    for k in sizes.ks:
        stats = RunStats(n=rng.integers(0, 5000, k).astype(float), window_mean=rng.random(k))
        w = weights(strategy, stats)
        w_times, c_times = [], []
        for step in range(sizes.math_repeats):
            t0 = time.perf_counter()
            weights(strategy, stats)
            t1 = time.perf_counter()
            compose_batch(w, BATCH, plan_rng(0, step, BATCH))
            t2 = time.perf_counter()
            w_times.append((t1 - t0) * 1e6)
            c_times.append((t2 - t1) * 1e6)
        rows.append(
            {
                "k": k,
                "weights_us_p50": round(percentile(w_times, 50), 1),
                "compose_us_p50": round(percentile(c_times, 50), 1),
                "total_us_p50": round(percentile(w_times, 50) + percentile(c_times, 50), 1),
            }
        )
    return rows


def memory_of(redis_url: str, run_id: str) -> dict[str, int]:
    """``MEMORY USAGE ... SAMPLES 0`` of each of the run's keys, and their entry counts."""
    r = redis.Redis.from_url(redis_url)
    try:
        used = {
            name: int(r.memory_usage(key, samples=0) or 0)
            for name, key in zip(RUN_KEY_NAMES, run_keys(run_id), strict=True)
        }
        keys = dict(zip(RUN_KEY_NAMES, run_keys(run_id), strict=True))
        used["n_report_ids"] = int(r.zcard(keys["reports"]))
        used["n_plans"] = int(r.hlen(keys["plans"]))
        used["n_history"] = int(r.llen(keys["history"]))
    finally:
        r.close()
    return used


def measure_memory(
    base_url: str, redis_url: str, k: int, window: int, sizes: Sizes
) -> dict[str, Any]:
    """Live state and bounded logs of a run with every window full.

    After the windows are filled, ``sizes.memory_reports`` one-value reports (all of one
    step, so they add report ids but one history entry) and ``sizes.memory_plans`` plans
    of new steps give the logs enough entries to measure their bytes per entry, from which
    their size at the service's default retention limits is projected.
    """
    run_id = f"mem-k{k}-w{window}"
    token = create_run(base_url, run_id, k, window)
    reports = fill_windows(base_url, run_id, token, k, window)
    auth = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    make = plan_body_maker(run_id, new_step=True)
    with httpx.Client(base_url=base_url, timeout=60.0, headers=auth) as http:
        for i in range(sizes.memory_reports):
            body = {"report_id": f"small-{i}", "step": reports, "advantages": {"d00000": [0.5]}}
            http.post(f"/v1/runs/{run_id}/reports", json=body).raise_for_status()
        for i in range(sizes.memory_plans):
            path, content = make(i)
            http.post(path, content=content).raise_for_status()
        used = memory_of(redis_url, run_id)
        http.delete(f"/v1/runs/{run_id}").raise_for_status()
    live = sum(used[name] for name in RUN_KEY_NAMES if name not in LOG_KEYS)
    logs = sum(used[name] for name in RUN_KEY_NAMES if name in LOG_KEYS)
    per_history = used["history"] / max(1, used["n_history"])
    per_plan = (used["plans"] + used["plan_steps"]) / max(1, used["n_plans"])
    per_report_id = used["reports"] / max(1, used["n_report_ids"])
    limits = Settings.model_fields
    at_caps = (
        per_history * history_capacity(Settings(_env_file=None), k)
        + per_plan * (limits["plan_retention"].default + 1)
        + per_report_id * limits["report_id_retention"].default
    )
    return {
        "k": k,
        "window": window,
        "fill_reports": reports,
        "live_bytes": live,
        "live_bytes_per_distribution": round(live / k, 1),
        "windows_bytes_per_distribution": round(used["windows"] / k, 1),
        "logs_bytes": logs,
        "history_bytes_per_entry": round(per_history, 1),
        "plan_bytes_per_plan": round(per_plan, 1),
        "report_id_bytes": round(per_report_id, 1),
        "logs_at_caps_mb": round(at_caps / 1e6, 2),
        "keys": used,
    }


def client_overhead(base_url: str, k: int, sizes: Sizes) -> dict[str, Any]:
    """The real blocking client's plan + 16x8 report per step, against a demo step time."""
    prompts, rollouts = 16, 8
    rng = np.random.default_rng(2)
    with CurriculumClient.create_or_attach(
        base_url, names_of(k), run_id=f"client-k{k}", strategy="dump-ucb"
    ) as curriculum:
        plan_ms, report_ms, total_ms = [], [], []
        for step in range(sizes.client_steps):
            t0 = time.perf_counter()
            plan = curriculum.plan(step, prompts)
            t1 = time.perf_counter()
            advantages: dict[str, list[float]] = {}
            rewards: dict[str, list[float]] = {}
            for name in plan.assignment:
                advantages.setdefault(name, []).extend(rng.normal(size=rollouts).tolist())
                rewards.setdefault(name, []).extend(rng.integers(0, 2, rollouts).tolist())
            t2 = time.perf_counter()
            curriculum.report(step, advantages, rewards)
            t3 = time.perf_counter()
            plan_ms.append((t1 - t0) * 1000)
            report_ms.append((t3 - t2) * 1000)
            total_ms.append((t1 - t0 + t3 - t2) * 1000)
            if plan.source != "service":
                raise RuntimeError(f"step {step} was planned locally: the service did not answer")
    mean_total = float(np.mean(total_ms))
    return {
        "k": k,
        "steps": sizes.client_steps,
        "plan_p50_ms": round(percentile(plan_ms, 50), 3),
        "report_p50_ms": round(percentile(report_ms, 50), 3),
        "step_p50_ms": round(percentile(total_ms, 50), 3),
        "step_p99_ms": round(percentile(total_ms, 99), 3),
        "step_mean_ms": round(mean_total, 3),
        "step_time_s": sizes.step_time_s,
        "overhead_pct": round(100 * mean_total / (sizes.step_time_s * 1000), 3),
    }


# -- orchestration ----------------------------------------------------------------------------


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


async def run_http_sections(
    service: HttpApp, bare: HttpApp, sizes: Sizes, log: Callable[[str], None]
) -> dict[str, Any]:
    """Everything that goes over HTTP to the service and the bare endpoint."""
    out: dict[str, Any] = {}
    log("bare endpoint")
    out["bare"] = [
        await measure_closed(bare, None, BARE_MAKE, sizes, c, sizes.requests)
        for c in sizes.concurrencies
    ]

    plans: list[dict[str, Any]] = []
    reports: list[dict[str, Any]] = []
    rate_rows: list[dict[str, Any]] = []
    for k in sizes.ks:
        log(f"plan/report K={k}")
        # Kept plans and new-step plans on separate runs: new steps would push the kept
        # step out of the plan retention.
        run_id, new_run = f"load-k{k}", f"new-k{k}"
        token = create_run(service.url, run_id, k, 300)
        new_token = create_run(service.url, new_run, k, 300)
        report_make = report_body_maker(run_id, k)
        lean_make = report_body_maker(run_id, k, seed=1, with_weights=False)
        kept = plan_body_maker(run_id, new_step=False)
        new = plan_body_maker(new_run, new_step=True)
        offset = 0
        for c in sizes.concurrencies:
            row = await measure_closed(
                service, token, report_make, sizes, c, sizes.report_requests, first=offset
            )
            reports.append({"k": k, "weights": "returned", **row})
            offset += sizes.report_requests + sizes.warmup
            row = await measure_closed(
                service, token, lean_make, sizes, c, sizes.report_requests, first=offset
            )
            reports.append({"k": k, "weights": "left out", **row})
            row = await measure_closed(service, token, kept, sizes, c, sizes.requests)
            plans.append({"k": k, "case": "kept", **row})
            row = await measure_closed(
                service, new_token, new, sizes, c, sizes.requests, first=offset
            )
            plans.append({"k": k, "case": "new step", **row})
            offset += sizes.requests + sizes.report_requests + 2 * sizes.warmup
        if k in sizes.rate_ks:
            row = await measure_open(service, token, kept, sizes)
            rate_rows.append({"k": k, "case": "kept", **row})
            row = await measure_open(service, new_token, new, sizes, first=offset)
            rate_rows.append({"k": k, "case": "new step", **row})
    out["plan"], out["report"], out["plan_rate"] = plans, reports, rate_rows

    log("plan and report against the window W")
    w_rows = []
    k = 12
    for window in sizes.windows:
        run_id = f"window-k{k}-w{window}"
        token = create_run(service.url, run_id, k, window)
        fill_windows(service.url, run_id, token, k, window)
        for case, make in (
            ("kept", plan_body_maker(run_id, new_step=False)),
            ("report", report_body_maker(run_id, k)),
            ("new step", plan_body_maker(run_id, new_step=True)),
        ):
            row = await measure_closed(service, token, make, sizes, 1, sizes.w_requests)
            w_rows.append({"k": k, "window": window, "case": case, **row})
    out["window"] = w_rows

    log("kept plan against bare, paired rounds")
    out["paired"] = await paired_rounds(service, bare, sizes)
    return out


BARE_MAKE: RequestMaker = lambda i: ("/bare", b'{"step": %d, "batch_size": 128}' % i)  # noqa: E731
"""Requests to the bare endpoint, shaped like a plan request."""


async def paired_rounds(service: HttpApp, bare: HttpApp, sizes: Sizes) -> list[dict[str, Any]]:
    """A kept plan's throughput against the bare endpoint's, measured in alternating rounds
    (:func:`paired_ratio`) at each concurrency."""
    run_id = "paired-k12"
    token = create_run(service.url, run_id, 12, 300)
    kept = plan_body_maker(run_id, new_step=False)
    return [await paired_ratio(service, token, kept, bare, sizes, c) for c in sizes.concurrencies]


async def paired_ratio(
    service: HttpApp,
    token: str,
    make: RequestMaker,
    bare: HttpApp,
    sizes: Sizes,
    concurrency: int,
) -> dict[str, Any]:
    """The throughput of ``make``'s requests against the bare endpoint's, in alternating
    rounds.

    On a shared machine throughput moves by tens of percent between runs minutes apart; a
    round of each, back to back, sees the same conditions, so the ratio of the pair is far
    steadier than the ratio of two sections measured minutes apart. The median, lowest and
    highest ratio over ``sizes.pair_rounds`` pairs (which goes first alternates), and the
    same for server CPU per request. Each round's requests are numbered apart from the
    others' (``first``), so a maker of new steps never asks for a step twice.
    """
    rps_ratios, cpu_ratios = [], []
    span = sizes.warmup + sizes.pair_requests
    for i in range(sizes.pair_rounds):
        order = [("bare", bare, None, BARE_MAKE), ("plan", service, token, make)]
        if i % 2:
            order.reverse()
        got = {
            name: await measure_closed(
                app, tok, mk, sizes, concurrency, sizes.pair_requests, first=i * span
            )
            for name, app, tok, mk in order
        }
        rps_ratios.append(got["plan"]["rps"] / got["bare"]["rps"])
        cpu_ratios.append(got["plan"]["cpu_us"] / max(1, got["bare"]["cpu_us"]))
    return {
        "concurrency": concurrency,
        "rounds": sizes.pair_rounds,
        "rps_ratio_median": round(float(np.median(rps_ratios)), 3),
        "rps_ratio_min": round(min(rps_ratios), 3),
        "rps_ratio_max": round(max(rps_ratios), 3),
        "cpu_ratio_median": round(float(np.median(cpu_ratios)), 2),
    }


PROMPT_K = 12
"""Distributions of the prompt section's runs."""


def check_prompt_plan(base_url: str, run_id: str, token: str, prompts: int) -> None:
    """One plan of ``run_id`` names a prompt for each slot (``prompt_ids``, each below
    ``prompts``) when the run declares prompts, and none otherwise; ``RuntimeError`` if not."""
    response = httpx.post(
        f"{base_url}/v1/runs/{run_id}/plan",
        json={"step": 0, "batch_size": BATCH},
        headers={"authorization": f"Bearer {token}"},
        timeout=60.0,
    )
    response.raise_for_status()
    ids = response.json().get("prompt_ids")
    if prompts and (ids is None or len(ids) != BATCH or not 0 <= min(ids) <= max(ids) < prompts):
        raise RuntimeError(f"{run_id}: a plan without a prompt id per slot: {ids}")
    if not prompts and ids is not None:
        raise RuntimeError(f"{run_id}: prompt ids in a run without prompts")


async def prompt_cost(
    service: HttpApp, bare: HttpApp, sizes: Sizes, log: Callable[[str], None]
) -> dict[str, Any]:
    """What declaring prompts costs a run of ``PROMPT_K`` distributions, for each count of
    prompts per distribution in ``sizes.prompt_counts`` (0: none, as before prompts): plans
    kept and new (batch 128) and reports of 128 x 16 values with and without groups, closed
    loop; the Redis memory of each run that planned new steps; and the new-step plan's
    throughput against the bare endpoint's in paired rounds at
    ``sizes.prompt_pair_concurrency``."""
    plans: list[dict[str, Any]] = []
    reports: list[dict[str, Any]] = []
    memory: list[dict[str, Any]] = []
    paired: list[dict[str, Any]] = []
    for prompts in sizes.prompt_counts:
        log(f"prompts: {prompts} per distribution")
        # separate runs: new steps would push the kept step out of the plan retention, and
        # reports would move the prompt state the new steps draw from
        shape = {"prompts_per_distribution": prompts, "prompts": prompts * PROMPT_K}
        runs = {
            case: (
                f"prompts{prompts}-{case}",
                create_run(service.url, f"prompts{prompts}-{case}", PROMPT_K, 300, prompts),
            )
            for case in ("kept", "new", "report", "paired")
        }
        check_prompt_plan(service.url, *runs["kept"], prompts)
        kept = plan_body_maker(runs["kept"][0], new_step=False)
        new = plan_body_maker(runs["new"][0], new_step=True)
        report = report_body_maker(runs["report"][0], PROMPT_K, prompts=prompts)
        offset = 0
        for c in sizes.prompt_concurrencies:
            for case, (_, token), make, requests in (
                ("kept", runs["kept"], kept, sizes.prompt_requests),
                ("new step", runs["new"], new, sizes.prompt_requests),
                ("report", runs["report"], report, sizes.prompt_report_requests),
            ):
                row = await measure_closed(service, token, make, sizes, c, requests, first=offset)
                offset += requests + sizes.warmup
                rows = reports if case == "report" else plans
                groups = {"groups": PROMPTS if prompts else 0} if case == "report" else {}
                rows.append({**shape, "case": case, **groups, **row})
        used = memory_of(service.redis_url, runs["new"][0])
        prompt_bytes = used["prompts"] + used["prompt_dists"]
        total = sum(used[name] for name in RUN_KEY_NAMES)
        memory.append(
            {
                **shape,
                "plans_kept": used["n_plans"],
                "prompt_state_bytes": prompt_bytes,
                "plans_bytes": used["plans"] + used["plan_steps"],
                "run_bytes": total,
                "run_mib": round(total / 2**20, 3),
                "keys": used,
            }
        )
        paired_run, paired_token = runs["paired"]
        row = await paired_ratio(
            service,
            paired_token,
            plan_body_maker(paired_run, new_step=True),
            bare,
            sizes,
            sizes.prompt_pair_concurrency,
        )
        paired.append({**shape, "case": "new step", **row})
    return {
        "prompts_plan": plans,
        "prompts_report": reports,
        "prompts_memory": memory,
        "prompts_paired": paired,
    }


@dataclass(frozen=True)
class Neighbour:
    """Sizes of the noisy-neighbour section: ``phase_s`` of the small tenant's plans alone,
    then as long beside the large tenant, whose run has ``large_k`` distributions and whose
    ``large_concurrency`` reporters send reports of ``large_values`` advantages over
    ``large_touched`` of them back to back (after a 429, Retry-After later)."""

    phase_s: float
    ramp_s: float
    large_k: int
    large_touched: int
    large_values: int
    large_concurrency: int
    warmup: int


def neighbour_sizes(smoke: bool) -> Neighbour:
    """Tiny sizes for the smoke test; else the largest run and report the default settings
    allow (``CURRICULUM_MAX_DISTRIBUTIONS``, ``CURRICULUM_MAX_REPORT_DISTRIBUTIONS``,
    ``CURRICULUM_MAX_REPORT_VALUES``)."""
    if smoke:
        return Neighbour(1.5, 0.5, 1000, 1000, 20_000, 2, 5)
    limits = Settings(_env_file=None)
    k = limits.max_distributions
    touched = min(k, limits.max_report_distributions)
    return Neighbour(15.0, 2.0, k, touched, limits.max_report_values, 4, 50)


def large_report_maker(run_id: str, k: int, values: int) -> tuple[RequestMaker, int]:
    """Reports of ``values`` advantages (two decimals) over the first ``k`` distributions,
    each its own report id; with its body's size in bytes."""
    rng = np.random.default_rng(2)
    flat = np.round(rng.normal(size=values), 2).tolist()
    bounds = np.linspace(0, values, k + 1).astype(int).tolist()
    advantages = {name: flat[bounds[i] : bounds[i + 1]] for i, name in enumerate(names_of(k))}
    marker = "@@REPORT_ID@@"
    text = json.dumps({"report_id": marker, "step": 0, "advantages": advantages})
    head, tail = (part.encode() for part in text.split(marker))
    path = f"/v1/runs/{run_id}/reports"
    return (lambda i: (path, head + b"big-%d" % i + tail)), len(head) + len(tail) + 10


async def reporters(
    http: RawHttp, make: RequestMaker, *, concurrency: int, max_s: float, retry_after_s: float
) -> tuple[LoadResult, int]:
    """``concurrency`` workers send reports back to back for ``max_s``; one answered 429
    waits ``retry_after_s`` (the service's Retry-After) before its next. The applied ones'
    latencies, and how many got 429."""
    result = LoadResult()
    refused = 0
    start = time.perf_counter()
    deadline = start + max_s
    sent = 0

    async def worker() -> None:
        nonlocal refused, sent
        while time.perf_counter() < deadline:
            sent += 1
            path, body = make(sent)
            t0 = time.perf_counter()
            status = await http.post(path, body)
            if status == 200:
                result.latencies_ms.append((time.perf_counter() - t0) * 1000)
            elif status == 429:
                refused += 1
                await asyncio.sleep(retry_after_s)
            else:
                result.errors += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.wall_s = time.perf_counter() - start
    return result, refused


async def noisy_neighbour(service: HttpApp, sizes: Neighbour) -> dict[str, Any]:
    """A small tenant's plans (K=12, batch 128, a new step each, one at a time) alone, then
    beside a large tenant that reports at its limits: the small tenant's latency in both."""
    small_token = create_run(service.url, "small", 12, 300)
    large_token = create_run(service.url, "large", sizes.large_k, 300)
    small = plan_body_maker("small", new_step=True)
    large, body_bytes = large_report_maker("large", sizes.large_touched, sizes.large_values)
    rows: list[dict[str, Any]] = []
    async with client(service.url, small_token, 1) as http:
        await closed_loop(http, small, concurrency=1, requests=sizes.warmup, max_s=10.0)
        alone = await closed_loop(
            http, small, concurrency=1, requests=10**9, max_s=sizes.phase_s, first=10**6
        )
        rows.append({"small tenant": "alone", **alone.summary()})
        async with client(service.url, large_token, sizes.large_concurrency) as big:
            flood = asyncio.create_task(
                reporters(
                    big,
                    large,
                    concurrency=sizes.large_concurrency,
                    max_s=sizes.ramp_s + sizes.phase_s,
                    retry_after_s=Settings(_env_file=None).retry_after_s,
                )
            )
            await asyncio.sleep(sizes.ramp_s)
            beside = await closed_loop(
                http, small, concurrency=1, requests=10**9, max_s=sizes.phase_s, first=2 * 10**6
            )
            heavy, refused = await flood
        rows.append({"small tenant": "beside the large one", **beside.summary()})
    large_row = {
        "distributions": sizes.large_k,
        "touched": sizes.large_touched,
        "values_per_report": sizes.large_values,
        "body_bytes": body_bytes,
        "concurrency": sizes.large_concurrency,
        **heavy.summary(),
        "refused_429": refused,
    }
    return {"noisy_small": rows, "noisy_large": [large_row]}


def ratios(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each endpoint's throughput and p50 against the bare endpoint and the Redis floor."""
    bare = {row["concurrency"]: row for row in results["bare"]}
    floor = {row["concurrency"]: row for row in results["redis_py"]}
    rows = []
    reports = ({**r, "case": f"report, weights {r['weights']}"} for r in results["report"])
    for row in [*results["plan"], *reports]:
        c = row["concurrency"]
        rows.append(
            {
                "k": row["k"],
                "case": row["case"],
                "concurrency": c,
                "rps_vs_bare": round(row["rps"] / bare[c]["rps"], 3),
                "p50_vs_bare": round(row["p50_ms"] / bare[c]["p50_ms"], 2),
                "p50_vs_redis": round(row["p50_ms"] / floor[c]["p50_ms"], 1),
                "cpu_vs_bare": round(row["cpu_us"] / max(1, bare[c]["cpu_us"]), 2),
            }
        )
    return rows


def table(title: str, rows: list[dict[str, Any]], skip: tuple[str, ...] = ("keys",)) -> str:
    """A plain-text table of ``rows`` (the keys of the first row as columns)."""
    if not rows:
        return f"\n## {title}\n(none)\n"
    cols = [c for c in rows[0] if c not in skip]
    cells = [[str(row.get(c, "")) for c in cols] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(cols)]
    lines = [f"\n## {title}", "  ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines) + "\n"


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured value and whether it is met."""
    rows: list[dict[str, Any]] = []
    for row in results["plan_rate"]:
        if row["case"] != "kept":
            continue
        limit = 5.0 if row["k"] <= 12 else 20.0
        rows.append(
            {
                "target": f"plan p99 at {row['rate']:.0f}/s, K={row['k']} < {limit} ms",
                "value": row["p99_ms"],
                "met": row["p99_ms"] < limit,
            }
        )
    for row in results["report"]:
        if row["concurrency"] == 1:
            rows.append(
                {
                    "target": f"report p99 (2048 values, c=1, weights {row['weights']}), "
                    f"K={row['k']} < 10 ms",
                    "value": row["p99_ms"],
                    "met": row["p99_ms"] < 10.0,
                }
            )
    for row in results["paired"]:
        name = f"kept plan rps >= 0.8 x bare (median of paired rounds), c={row['concurrency']}"
        value = row["rps_ratio_median"]
        rows.append({"target": name, "value": value, "met": value >= 0.8})
    rows += prompt_targets(results)
    for row in results["memory"]:
        if row["window"] == 300:
            rows.append(
                {
                    "target": f"live state per distribution at W=300, K={row['k']} <= 2048 B",
                    "value": row["live_bytes_per_distribution"],
                    "met": row["live_bytes_per_distribution"] <= 2048,
                }
            )
    return rows


PROMPT_RUN_BOUND_BYTES = 8 * 2**20
"""The bound on a run's Redis memory with a million prompts."""


def prompt_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The prompt section's targets: a new-step plan at half the bare endpoint's throughput
    or better (median of paired rounds), with and without prompts, and the Redis memory of
    the run with the most prompts within :data:`PROMPT_RUN_BOUND_BYTES` (meant for a
    million; the smoke run's counts are tiny)."""
    rows: list[dict[str, Any]] = []
    for row in results.get("prompts_paired", []):
        value = row["rps_ratio_median"]
        rows.append(
            {
                "target": f"new-step plan rps >= 0.5 x bare (median of paired rounds), "
                f"c={row['concurrency']}, {row['prompts']} prompts",
                "value": value,
                "met": value >= 0.5,
            }
        )
    memory = results.get("prompts_memory", [])
    if memory:
        largest = max(memory, key=lambda row: row["prompts"])
        rows.append(
            {
                "target": f"Redis memory of a run with {largest['prompts']} prompts <= 8 MiB",
                "value": largest["run_mib"],
                "met": largest["run_bytes"] <= PROMPT_RUN_BOUND_BYTES,
            }
        )
    return rows


PROMPT_TABLES = (
    ("Prompts: plan, closed loop (K=12, batch 128)", "prompts_plan"),
    ("Prompts: report, closed loop (128 x 16 values, groups or none)", "prompts_report"),
    ("Prompts: Redis memory of the run that planned new steps", "prompts_memory"),
    ("Prompts: new-step plan against bare, alternating rounds", "prompts_paired"),
)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the tables and write the JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.service_load")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, a few seconds (CI)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument(
        "--noisy-neighbour",
        action="store_true",
        help="only a small tenant's plan latency alone and beside a large tenant reporting "
        "at its limits (under a minute; with --smoke, a few seconds)",
    )
    parser.add_argument(
        "--prompts",
        action="store_true",
        help="only what declaring prompts costs: plans, reports with groups, the memory of a "
        "million-prompt run, new-step plans against bare (a few minutes; with --smoke, "
        "seconds)",
    )
    args = parser.parse_args(argv)
    if args.noisy_neighbour:
        return noisy_main(neighbour_sizes(args.smoke), args.out)
    sizes = SMOKE if args.smoke else FULL

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')} load {load_average()[0]}] {message}", flush=True)

    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_before": load_average(),
        },
        "sizes": asdict(sizes),
    }
    started = time.perf_counter()
    server = RedisServer()
    server.start()
    service = HttpApp("service", server.url)
    bare = HttpApp("benchmarks.bare_app", server.url)
    try:
        service.start()
        bare.start()
        if args.prompts:
            results.update(asyncio.run(prompt_cost(service, bare, sizes, log)))
        else:
            log("floors: redis, math")
            results["redis_py"] = asyncio.run(redis_floor(server.url, sizes))
            results["redis_benchmark"] = redis_benchmark(server.port, sizes)
            results["math"] = math_floor(sizes)
            results.update(asyncio.run(run_http_sections(service, bare, sizes, log)))
            results["ratios"] = ratios(results)
            log("memory")
            results["memory"] = [
                measure_memory(service.url, server.url, k, w, sizes) for k, w in sizes.memory_cases
            ]
            log("client overhead")
            results["client"] = [client_overhead(service.url, k, sizes) for k in sizes.client_ks]
            results.update(asyncio.run(prompt_cost(service, bare, sizes, log)))
    except Exception:
        print(f"--- service log ---\n{service.log_tail()}", flush=True)
        raise
    finally:
        bare.stop()
        service.stop()
        server.stop()
    if args.prompts:
        results["targets"] = prompt_targets(results)
        return finish(results, (*PROMPT_TABLES, ("Targets", "targets")), args.out, started)
    results["targets"] = targets(results)
    tables = (
        ("Redis floor: redis-py asyncio HGET", "redis_py"),
        ("Redis floor: redis-benchmark -t get", "redis_benchmark"),
        ("Scheduling math in-process (batch 128)", "math"),
        ("Bare FastAPI endpoint (1 Redis round trip)", "bare"),
        ("plan, closed loop (batch 128)", "plan"),
        ("report, closed loop (128 x 16 = 2048 values)", "report"),
        ("Ratios to the floors", "ratios"),
        ("Kept plan against bare, alternating rounds (K=12)", "paired"),
        (f"plan, open loop at {sizes.rate:.0f} req/s", "plan_rate"),
        ("plan and report against the window W (K=12, windows full, c=1)", "window"),
        ("Redis memory per run (windows full)", "memory"),
        ("Client overhead per training step", "client"),
        *PROMPT_TABLES,
        ("Targets", "targets"),
    )
    return finish(results, tables, args.out, started)


def finish(
    results: dict[str, Any],
    tables: tuple[tuple[str, str], ...],
    out: Path | None,
    started: float,
) -> int:
    """Print ``tables`` (title, key of ``results``) and write ``results`` as JSON to ``out``."""
    results["machine"]["load_after"] = load_average()
    results["elapsed_s"] = round(time.perf_counter() - started, 1)
    for title, key in tables:
        print(table(title, results[key]))
    print(
        f"load before {results['machine']['load_before']}, after "
        f"{results['machine']['load_after']}, {results['elapsed_s']} s"
    )
    if out:
        out.write_text(json.dumps(results, indent=1, default=float), encoding="utf-8")
    return 0


def noisy_main(sizes: Neighbour, out: Path | None) -> int:
    """The noisy-neighbour section on its own service and Redis; prints and writes it."""
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "load_before": load_average()},
        "sizes": asdict(sizes),
    }
    started = time.perf_counter()
    server = RedisServer()
    server.start()
    service = HttpApp("service", server.url)
    try:
        service.start()
        results.update(asyncio.run(noisy_neighbour(service, sizes)))
    except Exception:
        print(f"--- service log ---\n{service.log_tail()}", flush=True)
        raise
    finally:
        service.stop()
        server.stop()
    results["machine"]["load_after"] = load_average()
    results["elapsed_s"] = round(time.perf_counter() - started, 1)
    print(table("Small tenant's plan (K=12, batch 128, new step, c=1)", results["noisy_small"]))
    print(table("Large tenant's reports, back to back", results["noisy_large"]))
    print(
        f"load before {results['machine']['load_before']}, after "
        f"{results['machine']['load_after']}, {results['elapsed_s']} s"
    )
    if out:
        out.write_text(json.dumps(results, indent=1, default=float), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
