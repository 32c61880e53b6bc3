"""``curriculum``: the operator's command line.

    curriculum runs list | show RUN | export RUN FILE | import RUN FILE | delete RUN
    curriculum doctor

Every command takes ``--url`` (``$CURRICULUM_URL``, default http://127.0.0.1:8000),
``--token`` (``$CURRICULUM_TOKEN``, else ``$ADMIN_TOKEN``) and ``--json``. Exit codes:
0 done, 1 a doctor check failed, 2 bad usage, 3 the service is unreachable, 4 the token was
refused, 5 no such run, 6 the service refused the request otherwise.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from trainer_client.errors import AuthError, RequestRejected, RunNotFound, ServiceUnavailable
from trainer_client.operator import OperatorClient

DEFAULT_URL = "http://127.0.0.1:8000"
SPARKS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 40

EXIT_CHECK_FAILED = 1
EXIT_UNREACHABLE = 3
EXIT_AUTH = 4
EXIT_NOT_FOUND = 5
EXIT_REJECTED = 6


def sparkline(values: Sequence[float], high: float, width: int = SPARK_WIDTH) -> str:
    """``values`` as at most ``width`` block characters on the scale ``0 .. high`` (a longer
    series is averaged over ``width`` equal spans)."""
    if not values:
        return ""
    if len(values) > width:
        edges = [round(i * len(values) / width) for i in range(width + 1)]
        values = [sum(values[a:b]) / (b - a) for a, b in itertools.pairwise(edges) if b > a]
    top = len(SPARKS) - 1
    scale = top / high if high > 0 else 0.0
    return "".join(SPARKS[min(top, max(0, round(v * scale)))] for v in values)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns padded to their widest cell; numbers right-aligned."""
    cells = [[str(c) for c in header], *[[_cell(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    numeric = [bool(rows) and all(_is_number(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for row in cells:
        parts = [
            c.rjust(w) if numeric[i] else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _age(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


# --- the commands: each returns (what --json prints, what a person reads, exit code) ------

Outcome = tuple[Any, str, int]


def _list(client: OperatorClient, args: argparse.Namespace) -> Outcome:
    runs = client.runs()
    now = time.time()
    rows = [
        [
            r["run_id"], r["distributions"], r["strategy"], r["version"], r["created_at"],
            "never" if r["reported_at"] is None else _age(now - r["reported_at"]) + " ago",
        ]
        for r in runs
    ]  # fmt: skip
    header = ["run", "distributions", "strategy", "version", "created", "last report"]
    text = table(header, rows) if runs else "no runs"
    return runs, text, 0


def _show(client: OperatorClient, args: argparse.Namespace) -> Outcome:
    run = client.run(args.run)
    history = client.history(args.run)
    names = history["distributions"]
    series = {name: [e["weights"][i] for e in history["entries"]] for i, name in enumerate(names)}
    high = max((max(s) for s in series.values() if s), default=1.0)
    strategy = dict(run["config"]["strategy"])
    name = strategy.pop("name")
    params = ", ".join(f"{k}={v}" for k, v in strategy.items())
    lines = [
        f"run {run['run_id']}  version {run['version']}  seed {run['config']['seed']}  "
        f"created {run['config']['created_at']}",
        f"strategy {name} ({params})",
    ]
    activity = run["activity"]
    for r in activity["reporters"]:
        rank = "(no rank)" if r["rank"] is None else f"rank {r['rank']}"
        age = _age(time.time() - r["at"])
        lines.append(f"{rank}: step {r['step']}, version {r['version']}, {age} ago")
    steps = [e["step"] for e in history["entries"]]
    span = f"steps {steps[0]}-{steps[-1]}" if steps else "no history yet"
    rows = []
    for dist in names:
        s = run["stats"][dist]
        flags = " ".join(f for f in ("starved", "saturated") if s[f])
        rows.append(
            [
                dist, s["weight"], s["n"], s["window_mean"], s["exploration_bonus"],
                s["reward_mean"] if s["reward_n"] else None,
                activity["last_step"].get(dist), flags, sparkline(series[dist], high),
            ]
        )  # fmt: skip
    header = ["distribution", "weight", "n", "mean|A|", "bonus", "reward", "last step", "flags"]
    lines += ["", table([*header, f"weight over {span}"], rows)]
    return {"run": run, "history": history}, "\n".join(lines), 0


def _export(client: OperatorClient, args: argparse.Namespace) -> Outcome:
    snapshot = client.export(args.run, history=not args.no_history)
    text = json.dumps(snapshot)
    if args.file == "-":
        sys.stdout.write(text + "\n")
    else:
        Path(args.file).write_text(text, encoding="utf-8")
    summary = {"run_id": args.run, "version": snapshot["version"], "file": args.file}
    return summary, f"exported run {args.run} (version {snapshot['version']}) to {args.file}", 0


def _import(client: OperatorClient, args: argparse.Namespace) -> Outcome:
    try:
        raw = sys.stdin.read() if args.file == "-" else Path(args.file).read_text("utf-8")
        snapshot = json.loads(raw)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read a snapshot from {args.file}: {exc}") from None
    if not isinstance(snapshot, dict):
        raise UsageError(f"{args.file} holds no snapshot (a JSON object from `export`)")
    done = client.import_(args.run, snapshot, create=not args.no_create)
    text = f"imported {args.file} into run {args.run}: version {done['version']}"
    if done.get("created"):
        text = f"created run {args.run} (token, shown once: {done['token']})\n{text}"
    return done, text, 0


def _delete(client: OperatorClient, args: argparse.Namespace) -> Outcome:
    done = client.delete(args.run)
    return done, f"deleted run {args.run}", 0


def _doctor(client: OperatorClient, args: argparse.Namespace) -> Outcome:
    report = client.doctor()
    marks = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}
    lines = [f"service {client_url(args)}: up, version {report['service_version']}"]
    lines += [f"{marks[c['status']]}  {c['name']}: {c['detail']}" for c in report["checks"]]
    failed = any(c["status"] == "fail" for c in report["checks"])
    return report, "\n".join(lines), EXIT_CHECK_FAILED if failed else 0


class UsageError(Exception):
    """Bad input on this side (a file that holds no snapshot)."""


def client_url(args: argparse.Namespace) -> str:
    return str(args.url or os.environ.get("CURRICULUM_URL") or DEFAULT_URL).rstrip("/")


def _token(args: argparse.Namespace) -> str | None:
    return args.token or os.environ.get("CURRICULUM_TOKEN") or os.environ.get("ADMIN_TOKEN")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help=f"the service (default $CURRICULUM_URL, else {DEFAULT_URL})")
    common.add_argument(
        "--token",
        help="the operator token, or a run's token for that run's calls (default "
        "$CURRICULUM_TOKEN, else $ADMIN_TOKEN; an env var keeps it out of shell history)",
    )
    common.add_argument("--json", action="store_true", help="print JSON, for scripts")
    common.add_argument(
        "--timeout", type=float, default=10.0, help="seconds per request (default 10)"
    )
    parser = argparse.ArgumentParser(
        prog="curriculum",
        description="Operate a curriculum scheduling service: list, show, export, import and "
        "delete runs, and check the deployment.",
        epilog="Exit codes: 0 done, 1 a doctor check failed, 2 bad usage, 3 the service is "
        "unreachable, 4 the token was refused, 5 no such run, 6 refused otherwise.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{runs,doctor}")
    runs = commands.add_parser("runs", help="list, show, export, import or delete runs")
    runs_commands = runs.add_subparsers(dest="runs_command", required=True)

    def add(name: str, handler: Callable[..., Outcome], help_text: str) -> argparse.ArgumentParser:
        sub = runs_commands.add_parser(
            name, parents=[common], help=help_text, description=help_text
        )
        sub.set_defaults(handler=handler)
        return sub

    add("list", _list, "every run of the deployment (operator token)")
    show = add("show", _show, "a run's table of distributions and a sparkline of each weight")
    show.add_argument("run", help="the run's id")
    export = add("export", _export, "save a run's snapshot to FILE ('-': standard output)")
    export.add_argument("run", help="the run's id")
    export.add_argument("file", help="where to write the snapshot (JSON)")
    export.add_argument("--no-history", action="store_true", help="leave the history out")
    imp = add(
        "import",
        _import,
        "replace a run's state with the snapshot in FILE ('-': standard input); a run that "
        "does not exist is created with the snapshot's configuration",
    )
    imp.add_argument("run", help="the run's id")
    imp.add_argument("file", help="the snapshot (JSON, from `export`)")
    imp.add_argument("--no-create", action="store_true", help="fail if the run does not exist")
    delete = add("delete", _delete, "remove a run and everything it has learnt")
    delete.add_argument("run", help="the run's id")
    doctor = commands.add_parser(
        "doctor",
        parents=[common],
        help="check the service, Redis, the scripts, the store layout and the clock",
        description="Check that the service answers and, through it (operator token), that "
        "Redis is reachable, the scripts are loaded, every run is in this version's store "
        "layout, and the clocks agree. Exit code 1 if a check failed.",
    )
    doctor.set_defaults(handler=_doctor)
    return parser


def _fail(args: argparse.Namespace, code: int, kind: str, message: str) -> int:
    if args.json:
        print(json.dumps({"error": {"code": kind, "message": message}}))
    else:
        print(f"error: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code."""
    args = _parser().parse_args(argv)
    url = client_url(args)
    client = OperatorClient(url, _token(args), timeout=args.timeout)
    try:
        data, text, code = args.handler(client, args)
    except ServiceUnavailable as exc:
        return _fail(args, EXIT_UNREACHABLE, "unreachable", f"cannot reach the service: {exc}")
    except AuthError as exc:
        hint = (
            "no token given: pass --token or set CURRICULUM_TOKEN"
            if exc.status == 401
            else "check --token (or CURRICULUM_TOKEN / ADMIN_TOKEN)"
        )
        return _fail(
            args, EXIT_AUTH, exc.code, f"the service refused the token: {exc.message}; {hint}"
        )
    except RunNotFound as exc:
        return _fail(args, EXIT_NOT_FOUND, exc.code, exc.message)
    except RequestRejected as exc:
        return _fail(args, EXIT_REJECTED, exc.code, f"the service refused: {exc.message}")
    except UsageError as exc:
        return _fail(args, 2, "usage", str(exc))
    finally:
        client.close()
    if args.handler is _export and args.file == "-":
        return code  # the snapshot went to standard output
    print(json.dumps(data, indent=2) if args.json else text)
    return code


if __name__ == "__main__":
    sys.exit(main())
