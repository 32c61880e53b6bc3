"""Acknowledged reports lost when Redis dies, by append-only file fsync policy.

Each trial starts a ``redis-server`` with ``--appendonly yes --appendfsync POLICY`` and a
service process on it, sends reports from concurrent writers (recording every report the
service acknowledged with 200), kills redis-server with SIGKILL under that load, starts it
again on the same data folder, and looks each acknowledged report id up in the run's
export: an id missing there is an acknowledged report lost.

A SIGKILL loses only what Redis acknowledged before it wrote it to the file, which the
policy alone does not decide: Redis writes the file before it answers, unless ``everysec``
finds the previous fsync still running (then it answers and postpones the write, up to
2 s). What a crash of the machine would lose (written but not yet fsynced) cannot be caused
here; with ``--trace`` (``strace`` on PATH) each trial records when Redis called
``fdatasync`` and counts, at every acknowledgement, the reports acknowledged since the last
fsync began: the reports a power cut at that moment would lose.

    python -m benchmarks.aof_loss --trials 5               # always and everysec, 5 each
    python -m benchmarks.aof_loss --policy everysec --trials 10 --trace
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import tempfile
import time
from bisect import bisect_right, insort
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import redis

from benchmarks.procs import HttpApp, Proc
from local_processes import find_redis_server, free_port, wait_until

POLICIES = ("always", "everysec")


@dataclass(frozen=True)
class Trial:
    """One kill of Redis under load. Times are seconds."""

    policy: str
    writers: int = 8
    load_s: float = 3.0
    """How long the writers report before Redis is killed."""
    trace: bool = False


def _redis_args(port: int, folder: Path, policy: str) -> list[str]:
    return [
        find_redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
        "--save", "", "--appendonly", "yes", "--appendfsync", policy,
    ]  # fmt: skip


def _start_redis(args: list[str], port: int, trace_to: Path | None = None) -> Proc:
    if trace_to is not None:
        args = ["strace", "-f", "-ttt", "--seccomp-bpf", "-e", "trace=fdatasync,fsync",
                "-o", str(trace_to), *args]  # fmt: skip
    proc = Proc(args)
    proc.start()
    client = redis.Redis(port=port, socket_timeout=0.5)
    try:
        wait_until(
            lambda: bool(client.ping()),
            f"redis-server on port {port}",
            ignore=(OSError, redis.exceptions.ConnectionError),
        )
    finally:
        client.close()
    return proc


def _redis_pid(port: int) -> int:
    """The redis-server's own pid (under strace, the child of the process started)."""
    client = redis.Redis(port=port, socket_timeout=2.0)
    try:
        return int(client.info("server")["process_id"])
    finally:
        client.close()


async def _write(
    url: str, run: str, headers: dict[str, str], prefix: str, stop: asyncio.Event,
    acked: list[tuple[float, float, str]],
) -> int:  # fmt: skip
    """Report one sample after another; record ``(sent, answered, id)`` (wall times) of
    each 200."""
    sent = 0
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=5.0) as http:
        while not stop.is_set():
            report_id = f"{prefix}-{sent}"
            sent += 1
            body = {"report_id": report_id, "step": sent, "advantages": {"a": [1.0]}}
            sent_at = time.time()
            try:
                reply = await http.post(f"/v1/runs/{run}/reports", json=body)
            except httpx.TransportError:
                continue
            if reply.status_code == 200:
                acked.append((sent_at, time.time(), report_id))
            else:
                await asyncio.sleep(0.05)  # 503: Redis is down
    return sent


async def _load_then_kill(
    url: str, run: str, headers: dict[str, str], trial: Trial, port: int
) -> tuple[list[tuple[float, float, str]], float]:
    stop = asyncio.Event()
    acked: list[tuple[float, float, str]] = []
    writers = [
        asyncio.create_task(_write(url, run, headers, f"w{i}", stop, acked))
        for i in range(trial.writers)
    ]
    await asyncio.sleep(trial.load_s)
    killed_at = time.time()
    os.kill(_redis_pid(port), signal.SIGKILL)
    await asyncio.sleep(0.5)  # the writers meet the dead Redis (503) and acknowledge nothing
    stop.set()
    await asyncio.gather(*writers)
    return acked, killed_at


def _fsync_times(trace: Path) -> list[float]:
    """Start times of the fdatasync/fsync calls in an ``strace -ttt`` log."""
    times = []
    for line in trace.read_text().splitlines():
        parts = line.split()
        if len(parts) > 2 and parts[2].startswith(("fdatasync(", "fsync(")):
            times.append(float(parts[1]))
    return sorted(times)


def unsynced_window(acked: list[tuple[float, float]], syncs: list[float]) -> dict[str, float]:
    """What a machine crash would lose, from ``(sent, answered)`` times of the acknowledged
    reports and the fsyncs' start times: at each acknowledgement, the reports acknowledged
    so far that were sent after the last fsync began (so written after it: in no fsync
    yet). Their largest and median number, and the longest gap between fsyncs in seconds.
    A lower bound: a report sent just before an fsync began may have missed it too."""
    acked = sorted(acked, key=lambda pair: pair[1])
    sent_so_far: list[float] = []
    at_risk = []
    for sent, answered in acked:
        insort(sent_so_far, sent)
        last_sync = syncs[bisect_right(syncs, answered) - 1] if syncs else float("-inf")
        at_risk.append(len(sent_so_far) - bisect_right(sent_so_far, last_sync))
    inside = [s for s in syncs if acked and acked[0][1] <= s <= acked[-1][1]]
    gaps = [b - a for a, b in pairwise(inside)]
    return {
        "max_reports": max(at_risk, default=0),
        "median_reports": float(statistics.median(at_risk)) if at_risk else 0.0,
        "max_gap_s": round(max(gaps, default=0.0), 3),
        "fsyncs": len(inside),
    }


def run_trial(trial: Trial) -> dict[str, Any]:
    """One trial: load, SIGKILL of Redis, restart from the file, look every ack up."""
    if trial.policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {trial.policy!r}")
    if trial.trace and shutil.which("strace") is None:
        raise RuntimeError("--trace needs strace on PATH")
    folder = Path(tempfile.mkdtemp(prefix="aof-trial-"))
    port = free_port()
    args = _redis_args(port, folder, trial.policy)
    trace = folder / "strace.log" if trial.trace else None
    redis_proc = _start_redis(args, port, trace)
    service = HttpApp("service", f"redis://127.0.0.1:{port}/0")
    service.env = {
        **(service.env or {}),
        "CURRICULUM_REDIS_TIMEOUT_S": "1",
        "CURRICULUM_REPORT_ID_RETENTION": "1000000",  # the export lists every id applied
        # so many report ids pass the default run budget: this throwaway Redis is the trial's
        "CURRICULUM_RUN_MEMORY_BUDGET_BYTES": str(1 << 30),
    }
    restarted: Proc | None = None
    try:
        service.start()
        answer = httpx.post(
            f"{service.url}/v1/runs", json={"run_id": "aof", "distributions": ["a"]}, timeout=10
        )
        answer.raise_for_status()
        created = answer.json()
        headers = {"Authorization": f"Bearer {created['token']}"}
        acked, killed_at = asyncio.run(_load_then_kill(service.url, "aof", headers, trial, port))
        assert redis_proc.process is not None
        redis_proc.process.wait(timeout=10)  # gone (under strace, strace exits with it)
        restarted = _start_redis(args, port)  # same port, same folder: loads the file
        wait_until(
            lambda: httpx.get(f"{service.url}/readyz", timeout=2).status_code == 200,
            "the service to reconnect",
            ignore=(OSError, httpx.TransportError),
        )
        export = httpx.get(
            f"{service.url}/v1/runs/aof/export", params={"history": "false"}, headers=headers,
            timeout=30,
        ).json()  # fmt: skip
        present = {report_id for report_id, _ in export["report_ids"]}
        acked_ids = {report_id for _, _, report_id in acked}
        result: dict[str, Any] = {
            "policy": trial.policy,
            "acknowledged": len(acked_ids),
            "acknowledged_per_s": round(len(acked_ids) / trial.load_s),
            "in_file": len(present),
            "lost": len(acked_ids - present),
            "in_file_unacknowledged": len(present - acked_ids),
            "version_after_restart": int(export["version"]),
        }
        if trace is not None:
            syncs = [t for t in _fsync_times(trace) if t <= killed_at]
            result["power_cut_window"] = unsynced_window([(s, a) for s, a, _ in acked], syncs)
        return result
    finally:
        service.stop()
        for proc in (restarted, redis_proc):
            if proc is not None:
                proc.stop()
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Run the trials; print one line per trial and a summary per policy."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.aof_loss", description=__doc__)
    parser.add_argument("--policy", choices=POLICIES, action="append")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--load-s", type=float, default=3.0)
    parser.add_argument("--trace", action="store_true", help="record fsyncs with strace")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    results: list[dict[str, Any]] = []
    for policy in args.policy or POLICIES:
        for _ in range(args.trials):
            result = run_trial(Trial(policy, load_s=args.load_s, trace=args.trace))
            print(json.dumps(result), flush=True)
            results.append(result)
    for policy in args.policy or POLICIES:
        mine = [r for r in results if r["policy"] == policy]
        print(
            f"{policy}: {len(mine)} trials, acknowledged reports lost per trial "
            f"{[r['lost'] for r in mine]} of {[r['acknowledged'] for r in mine]}"
        )
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return 1 if any(r["lost"] for r in results if r["policy"] == "always") else 0


if __name__ == "__main__":
    raise SystemExit(main())
