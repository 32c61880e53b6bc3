"""Soak and faults under load: many runs' ranks reporting every step through two service
processes on one Redis, while readers poll weights and history, with an optional fault.

Starts a throwaway ``redis-server`` and two ``python -m service`` processes on loopback. Each
of ``runs`` runs has ``ranks`` trainer ranks (``AsyncCurriculumClient``s given both replicas'
URLs, half of them the other way round) that plan every step, report their share of it and
keep a ledger of every sample they reported. At the end every client flushes what it still
owes, and each run's counts on the service must equal its ranks' ledgers: nothing lost,
nothing counted twice. Every HTTP answer is tallied by status (and a 5xx by whether it
carried ``Retry-After``); service RSS and Redis ``used_memory`` are sampled every second.

Faults (``--fault``), caused for real at ``--fault-at`` seconds:

- ``kill``: SIGKILL of the first service process; the clients go on with the other.
- ``redis-stop``: SIGSTOP of redis-server for ``--redis-stop`` seconds (10), then SIGCONT:
  the service answers 503 with ``Retry-After``, the clients schedule locally and buffer,
  then replay; the same service processes serve on, unrestarted.
- ``script-flush``: ``SCRIPT FLUSH`` on Redis: the service loads its scripts again.

    python -m benchmarks.soak --minutes 5 --out soak.json     # the long form, checked
    python -m benchmarks.soak --minutes 1 --fault kill

Exits 1 when a check fails (see :func:`problems`). Small runs of it are tests
(``tests/service/test_soak.py``); the figures are in ``docs/reliability.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import redis.asyncio as aioredis

from benchmarks.procs import HttpApp
from local_processes import RedisServer
from trainer_client import AsyncCurriculumClient

FAULTS = ("none", "kill", "redis-stop", "script-flush")


@dataclass(frozen=True)
class Soak:
    """What one soak does. Times are seconds."""

    runs: int = 8
    ranks: int = 4
    duration_s: float = 300.0
    step_s: float = 0.2
    """The least time one rank's step takes (a trainer's step is far longer)."""
    batch: int = 16
    """Prompts per step; each rank reports its share (slots ``rank::ranks``)."""
    group: int = 4
    """Completions per prompt: samples reported per slot."""
    distributions: int = 6
    readers: int = 2
    read_every_s: float = 0.1
    fault: str = "none"
    fault_at_s: float = 0.0
    redis_stop_s: float = 10.0
    sample_every_s: float = 1.0
    redis_timeout_s: float = 1.0
    plan_retention: int = 128
    report_id_retention: int = 1024
    history_limit: int = 128
    max_rss_growth_mib: float = 16.0
    max_redis_growth_pct: float = 10.0

    @property
    def state_steps(self) -> int:
        """Steps per run after which every bounded part of a run's state is full (plans,
        report ids, history), with one retention's margin."""
        full = max(self.plan_retention, self.report_id_retention // self.ranks, self.history_limit)
        return 2 * full


@dataclass
class Tally:
    """HTTP outcomes by status code (``503 without Retry-After`` apart), transport errors."""

    counts: Counter[str] = field(default_factory=Counter)

    def record(self, response: httpx.Response | None) -> None:
        if response is None:
            self.counts["transport error"] += 1
            return
        key = str(response.status_code)
        if response.status_code >= 500 and "Retry-After" not in response.headers:
            key += " without Retry-After"
        self.counts[key] += 1

    @property
    def server_errors(self) -> int:
        return sum(n for key, n in self.counts.items() if key.startswith("5"))


class TallyingTransport(httpx.AsyncHTTPTransport):
    """The real transport, counting each request's outcome."""

    def __init__(self, tally: Tally) -> None:
        super().__init__()
        self.tally = tally

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await super().handle_async_request(request)
        except httpx.TransportError:
            self.tally.record(None)
            raise
        self.tally.record(response)
        return response


@dataclass
class Rank:
    """One trainer rank: its client and its ledger of samples reported per distribution."""

    run_id: str
    rank: int
    client: AsyncCurriculumClient
    ledger: Counter[str] = field(default_factory=Counter)
    reports: int = 0
    steps: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    last_from_service_s: float = -1.0
    """When (seconds into the soak) this rank last got the service's plan."""
    local_s: float | None = None
    """When this rank first got a local plan (the service unreachable)."""
    back_s: float | None = None
    """When this rank first got the service's plan again after that."""


def rss_bytes(pid: int) -> int | None:
    """Resident set size of process ``pid`` (Linux ``/proc``); None once it has exited (a
    killed replica can die between the check that it runs and this read: a zombie has no
    ``VmRSS``)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return None


async def _train(rank: Rank, soak: Soak, t0: float, stop_at: float) -> None:
    """Plan every step, report this rank's share, keep the ledger."""
    rng = np.random.default_rng([rank.rank, rank.steps, len(rank.run_id)])
    while time.monotonic() < stop_at:
        started = time.monotonic()
        plan = await rank.client.plan(rank.steps, soak.batch)
        rank.statuses[f"plan from {plan.source}"] += 1
        now = round(time.monotonic() - t0, 2)  # when the plan came
        if plan.source == "service":
            rank.last_from_service_s = now
            if rank.local_s is not None and rank.back_s is None:
                rank.back_s = now
        elif rank.local_s is None:
            rank.local_s = now
        advantages: dict[str, list[float]] = {}
        for name in plan.assignment[rank.rank :: soak.ranks]:
            advantages.setdefault(name, []).extend(rng.normal(size=soak.group).round(4).tolist())
        rewards = {name: [float(v > 0) for v in values] for name, values in advantages.items()}
        result = await rank.client.report(rank.steps, advantages, rewards, with_weights=False)
        rank.statuses[f"report {result.status}"] += 1
        rank.ledger.update({name: len(values) for name, values in advantages.items()})
        rank.reports += 1
        rank.steps += 1
        await asyncio.sleep(max(0.0, soak.step_s - (time.monotonic() - started)))


async def _read(
    urls: list[str], runs: dict[str, str], soak: Soak, stop_at: float, tally: Tally, seed: int
) -> int:
    """Poll runs' weights and history over the replicas (the next one on a transport
    error); returns how many answers it got."""
    rng = np.random.default_rng(seed)
    answered, replica = 0, 0
    async with httpx.AsyncClient(timeout=5.0, transport=TallyingTransport(tally)) as http:
        while time.monotonic() < stop_at:
            run_id = list(runs)[int(rng.integers(len(runs)))]
            path = f"/v1/runs/{run_id}" + ("/history?limit=50" if rng.random() < 0.5 else "")
            try:
                await http.get(
                    urls[replica] + path, headers={"Authorization": f"Bearer {runs[run_id]}"}
                )
                answered += 1
            except httpx.TransportError:
                replica = (replica + 1) % len(urls)
            await asyncio.sleep(soak.read_every_s)
    return answered


async def _sample(
    services: list[HttpApp], redis_url: str, ranks: list[Rank], soak: Soak, stop_at: float,
    t0: float, out: list[dict[str, Any]],
) -> None:  # fmt: skip
    """Every ``sample_every_s``: each live service's RSS, Redis's used_memory, steps done."""
    client = aioredis.from_url(redis_url, socket_timeout=0.5)
    try:
        while time.monotonic() < stop_at:
            row: dict[str, Any] = {
                "t_s": round(time.monotonic() - t0, 2),
                "min_steps": min(r.steps for r in ranks),
                "rss": [
                    rss_bytes(s.pid) if s.process and s.process.poll() is None else None
                    for s in services
                ],
            }
            try:
                row["redis_used_memory"] = int((await client.info("memory"))["used_memory"])
            except (OSError, aioredis.RedisError):
                row["redis_used_memory"] = None  # Redis stopped by the fault
            out.append(row)
            await asyncio.sleep(soak.sample_every_s)
    finally:
        await client.aclose()


async def _fault(
    soak: Soak, services: list[HttpApp], redis_server: RedisServer, t0: float,
    events: list[dict[str, Any]],
) -> None:  # fmt: skip
    """Cause the soak's fault at ``fault_at_s``."""
    if soak.fault == "none":
        return
    await asyncio.sleep(max(0.0, soak.fault_at_s - (time.monotonic() - t0)))
    at = round(time.monotonic() - t0, 2)
    if soak.fault == "kill":
        assert services[0].process is not None
        services[0].process.kill()  # SIGKILL, as a crash
        events.append({"t_s": at, "event": f"SIGKILL service pid {services[0].pid}"})
    elif soak.fault == "redis-stop":
        os.kill(redis_server.pid, signal.SIGSTOP)
        events.append({"t_s": at, "event": f"SIGSTOP redis-server for {soak.redis_stop_s} s"})
        try:
            await asyncio.sleep(soak.redis_stop_s)
        finally:
            os.kill(redis_server.pid, signal.SIGCONT)
        events.append({"t_s": round(time.monotonic() - t0, 2), "event": "SIGCONT redis-server"})
    elif soak.fault == "script-flush":
        client = aioredis.from_url(redis_server.url)
        try:
            shas = script_shas()
            async with client.pipeline(transaction=True) as atomic:  # MULTI ... EXEC
                atomic.script_exists(*shas).script_flush().script_exists(*shas)
                exist, _, left = await atomic.execute()
            before, left = sum(exist), sum(left)
            events.append({"t_s": at, "event": f"SCRIPT FLUSH ({before} scripts, {left} left)"})
            await asyncio.sleep(2.0)
            again = sum(await client.script_exists(*shas))
            events.append({"t_s": at + 2.0, "event": f"{again} scripts loaded again"})
        finally:
            await client.aclose()


def script_shas() -> list[str]:
    """The SHA1 digests under which Redis caches the service's scripts."""
    import hashlib

    from service.store.scripts import SCRIPT_NAMES, script_source

    return [hashlib.sha1(script_source(n).encode()).hexdigest() for n in SCRIPT_NAMES]


async def _drive(soak: Soak, urls: list[str], services: list[HttpApp], redis_server: RedisServer,
                 log: Any) -> dict[str, Any]:  # fmt: skip
    names = [f"d{i}" for i in range(soak.distributions)]
    client_tally, reader_tally = Tally(), Tally()
    options: dict[str, Any] = {
        "retries": 1, "backoff": 0.05, "timeout": 5.0, "probe_initial_s": 0.5,
        "probe_max_s": 2.0,
    }  # fmt: skip
    ranks: list[Rank] = []
    tokens: dict[str, str] = {}
    for r in range(soak.runs):
        run_id = f"soak-{r}"
        for k in range(soak.ranks):
            order = urls if (r * soak.ranks + k) % 2 == 0 else urls[::-1]
            transport = TallyingTransport(client_tally)
            if k == 0:
                client = await AsyncCurriculumClient.create_or_attach(
                    order, names, run_id=run_id, strategy="dump-ucb", rank=k,
                    transport=transport, **options,
                )  # fmt: skip
                assert client.token is not None
                tokens[run_id] = client.token
            else:
                client = AsyncCurriculumClient(
                    order, run_id, tokens[run_id], rank=k, transport=transport,
                    distributions=names, strategy="dump-ucb", **options,
                )  # fmt: skip
            ranks.append(Rank(run_id, k, client))
    log(f"{len(ranks)} ranks of {soak.runs} runs created; training for {soak.duration_s:.0f} s")
    samples: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    t0 = time.monotonic()
    stop_at = t0 + soak.duration_s
    results = await asyncio.gather(
        *(_train(rank, soak, t0, stop_at) for rank in ranks),
        *(_read(urls, tokens, soak, stop_at, reader_tally, i) for i in range(soak.readers)),
        _sample(services, redis_server.url, ranks, soak, stop_at, t0, samples),
        _fault(soak, services, redis_server, t0, events),
    )
    trained_s = time.monotonic() - t0
    log(f"trained {trained_s:.1f} s; flushing what the clients still owe")
    flushed = [await rank.client.flush(60.0) for rank in ranks]
    runs: dict[str, Any] = {}
    for run_id in tokens:
        mine = [rank for rank in ranks if rank.run_id == run_id]
        info = await mine[0].client.run_info()
        sent = sum((rank.ledger for rank in mine), Counter())
        runs[run_id] = {
            "sent": dict(sorted(sent.items())),
            "counted": {name: int(s["n"]) for name, s in sorted(info["stats"].items()) if s["n"]},
            "reports_sent": sum(rank.reports for rank in mine),
            "version": int(info["version"]),
            "steps": [rank.steps for rank in mine],
        }
    statuses = sum((rank.statuses for rank in ranks), Counter())
    for rank in ranks:
        await rank.client.close()
    answered = sum(results[len(ranks) : len(ranks) + soak.readers])
    return {
        "trained_s": round(trained_s, 2),
        "runs": runs,
        "flushed": all(flushed),
        "report_statuses": dict(statuses),
        "last_plan_from_service_s": min(rank.last_from_service_s for rank in ranks),
        "planned_locally_from_s": _spread([rank.local_s for rank in ranks]),
        "back_online_from_s": _spread([rank.back_s for rank in ranks]),
        "client_http": dict(client_tally.counts),
        "reader_http": dict(reader_tally.counts),
        "reader_answers": answered,
        "events": events,
        "samples": samples,
    }


def _spread(times: list[float | None]) -> list[float] | None:
    """The earliest and latest of the ranks' times; None when no rank has one."""
    found = [t for t in times if t is not None]
    return [min(found), max(found)] if found else None


def memory_growth(samples: list[dict[str, Any]], state_steps: int) -> dict[str, Any] | None:
    """Growth from the first samples after every run made ``state_steps`` steps (its state
    is built) to the last ones (medians of 3); None when no run got that far."""
    built = [s for s in samples if s["min_steps"] >= state_steps]
    if len(built) < 6:
        return None

    def median(rows: list[dict[str, Any]], value: Any) -> float:
        found = [v for v in (value(row) for row in rows) if v is not None]
        return float(statistics.median(found)) if found else float("nan")

    def slope_per_min(value: Any) -> float:
        points = [(row["t_s"], value(row)) for row in built if value(row) is not None]
        if len(points) < 2:
            return float("nan")
        t, v = np.array(points, dtype=float).T
        return float(np.polyfit(t / 60.0, v, 1)[0])

    first, last = built[:3], built[-3:]
    out: dict[str, Any] = {"from_t_s": built[0]["t_s"], "to_t_s": built[-1]["t_s"]}
    out["slope_per_min"] = {
        "redis_used_memory": slope_per_min(lambda row: row["redis_used_memory"]),
        "rss": [slope_per_min(lambda row, i=i: row["rss"][i]) for i in range(len(built[0]["rss"]))],
    }
    out["redis_used_memory"] = [
        median(first, lambda row: row["redis_used_memory"]),
        median(last, lambda row: row["redis_used_memory"]),
    ]
    out["rss"] = [
        [
            median(first, lambda row, i=i: row["rss"][i]),
            median(last, lambda row, i=i: row["rss"][i]),
        ]
        for i in range(len(built[0]["rss"]))
    ]
    return out


def problems(result: dict[str, Any], soak: Soak) -> list[str]:
    """What the soak's checks found wrong; empty when it passed."""
    found = []
    for run_id, run in result["runs"].items():
        if run["counted"] != run["sent"]:
            found.append(f"{run_id}: counted {run['counted']} but its clients sent {run['sent']}")
        if run["version"] != run["reports_sent"]:
            found.append(f"{run_id}: version {run['version']} after {run['reports_sent']} reports")
    if not result["flushed"]:
        found.append("a client could not hand over what it owed within 60 s")
    for who in ("client_http", "reader_http"):
        tally = result[who]
        bare = {k: n for k, n in tally.items() if "without Retry-After" in k}
        if bare:
            found.append(f"{who}: 5xx without Retry-After: {bare}")
        server_errors = {k: n for k, n in tally.items() if k.startswith("5")}
        if soak.fault != "redis-stop" and server_errors:
            found.append(f"{who}: 5xx answers {server_errors}")
    growth = result.get("memory_growth")
    if growth is not None:
        redis_from, redis_to = growth["redis_used_memory"]
        if redis_to > redis_from * (1 + soak.max_redis_growth_pct / 100):
            found.append(f"Redis used_memory grew from {redis_from:.0f} to {redis_to:.0f} B")
        for i, (rss_from, rss_to) in enumerate(growth["rss"]):
            if rss_to - rss_from > soak.max_rss_growth_mib * 2**20:
                found.append(f"service {i} RSS grew from {rss_from:.0f} to {rss_to:.0f} B")
    return found


def run_soak(soak: Soak, log: Any = print) -> dict[str, Any]:
    """Start Redis and two service processes, drive the soak, stop everything; the results
    (``problems`` lists what failed)."""
    if soak.fault not in FAULTS:
        raise ValueError(f"fault must be one of {FAULTS}, got {soak.fault!r}")
    folder = tempfile.TemporaryDirectory(prefix="soak-redis-")
    redis_server = RedisServer(Path(folder.name))
    services: list[HttpApp] = []
    try:
        redis_server.start()
        for _ in range(2):
            service = HttpApp("service", redis_server.url)
            service.env = {
                **(service.env or {}),
                "CURRICULUM_REDIS_TIMEOUT_S": str(soak.redis_timeout_s),
                "CURRICULUM_PLAN_RETENTION": str(soak.plan_retention),
                "CURRICULUM_REPORT_ID_RETENTION": str(soak.report_id_retention),
                "CURRICULUM_HISTORY_LIMIT": str(soak.history_limit),
            }
            services.append(service)
            service.start()
        urls = [service.url for service in services]
        result = asyncio.run(_drive(soak, urls, services, redis_server, log))
        result["duplicates_counted_by_service"] = _duplicates(services)
    finally:
        for service in services:
            service.stop()
        redis_server.stop()
        folder.cleanup()
    result["soak"] = asdict(soak)
    result["memory_growth"] = memory_growth(result["samples"], soak.state_steps)
    result["problems"] = problems(result, soak)
    return result


def _duplicates(services: list[HttpApp]) -> int:
    """Reports the live services acknowledged as duplicates (their /metrics)."""
    total = 0
    for service in services:
        if service.process is None or service.process.poll() is not None:
            continue
        text = httpx.get(f"{service.url}/metrics", timeout=5.0).text
        for line in text.splitlines():
            if line.startswith('curriculum_reports_total{status="duplicate"}'):
                total += int(float(line.split()[-1]))
    return total


def summary(result: dict[str, Any]) -> str:
    """A few lines a person reads: what was sent and counted, answers, memory."""
    runs = result["runs"].values()
    reports = sum(run["reports_sent"] for run in runs)
    samples = sum(sum(run["sent"].values()) for run in runs)
    lines = [
        f"trained {result['trained_s']} s: {reports} reports ({samples} samples) over "
        f"{len(result['runs'])} runs, {reports / result['trained_s']:.0f} reports/s; "
        f"outcomes {result['report_statuses']}; "
        f"{result['duplicates_counted_by_service']} acknowledged as duplicates",
        f"client HTTP answers {result['client_http']}",
        f"reader HTTP answers {result['reader_http']}",
        *(f"at {e['t_s']} s: {e['event']}" for e in result["events"]),
    ]
    if result["planned_locally_from_s"] is not None:
        lines.append(
            f"ranks planned locally from {result['planned_locally_from_s']} s, from the "
            f"service again from {result['back_online_from_s']} s (earliest, latest rank)"
        )
    growth = result["memory_growth"]
    if growth is not None:
        mib = [[round(v / 2**20, 1) for v in pair] for pair in growth["rss"]]
        redis_mib = [round(v / 2**20, 2) for v in growth["redis_used_memory"]]
        lines.append(
            f"from {growth['from_t_s']} s (state built) to {growth['to_t_s']} s: service RSS "
            f"{mib} MiB, Redis used_memory {redis_mib} MiB"
        )
    lines.append(
        "checks: " + ("passed" if not result["problems"] else "; ".join(result["problems"]))
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run one soak from the command line; exit code 1 when a check failed."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=5.0, help="training time (5)")
    parser.add_argument("--fault", choices=FAULTS, default="none")
    parser.add_argument("--fault-at", type=float, help="seconds in (default: a third)")
    parser.add_argument("--redis-stop", type=float, default=10.0, help="seconds (10)")
    parser.add_argument("--step-s", type=float, default=Soak.step_s, help="least step time")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    duration = args.minutes * 60
    soak = replace(
        Soak(),
        duration_s=duration,
        fault=args.fault,
        fault_at_s=args.fault_at if args.fault_at is not None else duration / 3,
        redis_stop_s=args.redis_stop,
        step_s=args.step_s,
    )

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    logging.basicConfig(level=logging.ERROR)  # one outage warning per client is noise here
    result = run_soak(soak, log)
    print(summary(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
