"""A trainer's scheduling run on disk, in its output folder, and the ``replay`` command.

Two files, so that neither a crash of the trainer nor an outage of the service at the end of
training loses a report:

- ``scheduler-buffer.jsonl``: what the service is owed (the run's creation, an import,
  reports), written before each call returns (:mod:`trainer_client.buffer`);
- ``scheduler-run.json``: the run's id, its bearer token and the service's URL, so that
  ``--resume`` attaches to the same run and ``replay`` can hand the buffer over. It holds a
  secret (the run's token, which grants access to this run alone) and is written readable
  by its owner only.

``python -m trainer_client replay OUTPUT_DIR [--service-url URL] [--token TOKEN]`` hands a
buffer left behind to the service: the calls are replayed in order with their ids, so what
the service counted already is acknowledged as a duplicate, never counted twice.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

BUFFER_NAME = "scheduler-buffer.jsonl"
RUN_NAME = "scheduler-run.json"


@dataclass(frozen=True)
class RunRecord:
    """The scheduling run a trainer's output folder belongs to."""

    run_id: str
    token: str | None
    service_url: str | None


def buffer_path(folder: str | os.PathLike[str]) -> Path:
    """The buffer file of the run trained into ``folder``."""
    return Path(folder) / BUFFER_NAME


def read_run(folder: str | os.PathLike[str]) -> RunRecord | None:
    """The run recorded in ``folder``, if any."""
    path = Path(folder) / RUN_NAME
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return RunRecord(str(data["run_id"]), data.get("token"), data.get("service_url"))


def write_run(folder: str | os.PathLike[str], record: RunRecord) -> None:
    """Record the run in ``folder`` (owner-only permissions: it holds the run's token)."""
    path = Path(folder) / RUN_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(asdict(record), f)
    os.replace(tmp, path)


def pending_calls(folder: str | os.PathLike[str]) -> int:
    """How many calls the buffer in ``folder`` still owes the service."""
    path = buffer_path(folder)
    if not path.is_file():
        return 0
    return sum(1 for line in path.read_text().splitlines() if line.strip())


def buffered_run_id(folder: str | os.PathLike[str]) -> str | None:
    """The run the buffer in ``folder`` belongs to (its first readable line says)."""
    path = buffer_path(folder)
    if not path.is_file():
        return None
    for line in path.read_text().splitlines():
        try:
            return str(json.loads(line)["run_id"])
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
    return None


def leftover_message(folder: str | os.PathLike[str], url: str | None, timeout_s: float) -> str:
    """What to tell a person when training ends with calls still owed to the service."""
    where = f" at {url}" if url else ""
    return (
        f"the scheduling service{where} did not take {pending_calls(folder)} pending call(s) "
        f"within {timeout_s:.0f} s; they are kept in {buffer_path(folder)} and nothing is "
        f"lost: the next `--resume` of this run replays them, or replay them now with "
        f"`python -m trainer_client replay {folder}`"
        + (f" (the service at {url})" if url else " --service-url URL")
    )


def replay_main(argv: list[str] | None = None) -> int:
    """``replay``: hand a buffer left in an output folder to the service; exit code 0 when
    nothing is left owed, 1 when the service could not take it all in time."""
    from trainer_client.client import CurriculumClient

    p = argparse.ArgumentParser(
        prog="python -m trainer_client replay",
        description="Replay the scheduler calls a trainer left in its output folder.",
    )
    p.add_argument("folder", help="the trainer's output folder (holds scheduler-buffer.jsonl)")
    p.add_argument(
        "--service-url",
        help="the service's URL, or replicas' separated by commas (default: the URL(s) "
        "recorded in scheduler-run.json)",
    )
    p.add_argument("--token", help="default: the token recorded in scheduler-run.json")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to keep trying (60)")
    args = p.parse_args(argv)
    record = read_run(args.folder)
    run_id = buffered_run_id(args.folder) or (record.run_id if record else None)
    if run_id is None:
        print(f"nothing to replay: {buffer_path(args.folder)} holds no call", file=sys.stderr)
        return 0
    url = args.service_url or (record.service_url if record else None)
    if not url:
        raise SystemExit("no service URL recorded in the folder: pass --service-url")
    token = args.token or (record.token if record and record.run_id == run_id else None)
    with CurriculumClient(url, run_id, token, buffer_path=buffer_path(args.folder)) as client:
        owed = client.buffered
        done = client.flush(args.timeout)
        write_run(args.folder, RunRecord(run_id, client.token, url))
        left = client.buffered
    print(f"run {run_id!r}: {owed - left} of {owed} pending call(s) replayed to {url}")
    if not done:
        print(f"{left} call(s) are still kept in {buffer_path(args.folder)}", file=sys.stderr)
    return 0 if done else 1
