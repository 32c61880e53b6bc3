"""The ``curriculum`` console script, run as a process against a real service and Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from pydantic import SecretStr

from service.store.scripts import SCRIPT_NAMES
from tests.conftest import ROOT, RedisProcess, free_port
from trainer_client.operator_cli import SPARKS, sparkline

OPERATOR_TOKEN = "op-secret"
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
DISTS = ["easy", "medium", "hard"]


def _entry_point() -> list[str]:
    """The installed ``curriculum`` script (scripts/setup installs it), else the very entry
    point that pyproject.toml names, run by this interpreter."""
    installed = Path(sys.executable).parent / "curriculum"
    if installed.exists():
        return [str(installed)]
    target = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, func = target["curriculum"].split(":")
    return [sys.executable, "-c", f"import sys; from {module} import {func}; sys.exit({func}())"]


def curriculum(
    *args: str, url: str | None = None, token: str | None = OPERATOR_TOKEN, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """``curriculum ARGS`` with the URL and token from the environment, as an operator would."""
    env = {k: v for k, v in os.environ.items() if k not in ("CURRICULUM_TOKEN", "ADMIN_TOKEN")}
    env["PYTHONPATH"] = str(ROOT)
    if url is not None:
        env["CURRICULUM_URL"] = url
    if token is not None:
        env["CURRICULUM_TOKEN"] = token
    return subprocess.run(
        [*_entry_point(), *args], env=env, capture_output=True, text=True, input=stdin, timeout=60
    )


@pytest.fixture
def url(start_service: Callable[..., str], http: httpx.Client) -> str:
    """A service with an operator token and run ``kk``: 12 steps reported by two ranks; its
    ``GET /v1/runs/kk`` in pages of two distributions, so the CLI reads two pages."""
    url = start_service(admin_token=SecretStr(OPERATOR_TOKEN), run_page_limit=2)
    body = {"run_id": "kk", "distributions": DISTS, "strategy": {"name": "dump-ucb", "window": 8}}
    assert http.post(f"{url}/v1/runs", json=body, headers=OPERATOR).status_code == 201
    for step in range(12):
        for rank in (0, 1):
            report = {
                "report_id": f"{step}/{rank}", "step": step, "rank": rank,
                "advantages": {"medium": [0.8, -0.8], "hard": [0.0, 0.0]},
                "rewards": {"medium": [1.0, 0.0], "hard": [0.0, 0.0]},
            }  # fmt: skip
            reply = http.post(f"{url}/v1/runs/kk/reports", json=report, headers=OPERATOR)
            assert reply.status_code == 200
    return url


def test_runs_list_and_show(url: str, http: httpx.Client) -> None:
    http.post(f"{url}/v1/runs", json={"run_id": "b", "distributions": ["x"]}, headers=OPERATOR)
    listed = curriculum("runs", "list", "--json", url=url)
    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout)
    assert [(r["run_id"], r["version"], r["distributions"]) for r in runs] == [
        ("b", 0, 1), ("kk", 24, 3),
    ]  # fmt: skip
    text = curriculum("runs", "list", url=url)
    assert text.returncode == 0
    assert text.stdout.splitlines()[0].split()[:3] == ["run", "distributions", "strategy"]
    assert "never" in text.stdout  # b has no report

    shown = curriculum("runs", "show", "kk", url=url)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("run kk  version 24")
    assert "strategy dump-ucb (window=8" in lines[1]
    assert lines[2].startswith("rank 0: step 11, version 23") and lines[3].startswith("rank 1")
    rows = {
        line.split()[0]: line
        for line in lines
        if line.split()[:1] in (["easy"], ["medium"], ["hard"])
    }
    assert set(rows) == set(DISTS)
    for dist, line in rows.items():
        spark = line.split()[-1]
        assert len(spark) == 12 and set(spark) <= set(SPARKS), (dist, line)
    assert "saturated" in rows["hard"] and "saturated" not in rows["medium"]
    assert rows["easy"].split()[6] == "-"  # never sampled: no last step
    as_json = json.loads(curriculum("runs", "show", "kk", "--json", url=url).stdout)
    assert as_json["run"]["version"] == 24 and len(as_json["history"]["entries"]) == 12


def test_export_import_and_delete(url: str, tmp_path: Path, http: httpx.Client) -> None:
    file = tmp_path / "kk.json"
    exported = curriculum("runs", "export", "kk", str(file), url=url)
    assert exported.returncode == 0, exported.stderr
    snapshot = json.loads(file.read_text())
    assert snapshot["version"] == 24 and snapshot["distributions"]["medium"]["n"] == 48
    # into a run that does not exist: created from the snapshot's configuration
    done = curriculum("runs", "import", "kk-copy", str(file), "--json", url=url)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["created"] is True and answer["token"].startswith("rct_")
    copy = http.get(f"{url}/v1/runs/kk-copy", headers=OPERATOR).json()
    original = http.get(f"{url}/v1/runs/kk", headers=OPERATOR).json()
    assert copy["stats"] == original["stats"] and copy["config"]["strategy"]["window"] == 8
    refused = curriculum("runs", "import", "nope", str(file), "--no-create", url=url)
    assert refused.returncode == 5 and "no run with id 'nope'" in refused.stderr
    # through standard input and output
    piped = curriculum("runs", "export", "kk", "-", "--no-history", url=url)
    assert json.loads(piped.stdout)["history"] == []
    again = curriculum("runs", "import", "kk", "-", url=url, stdin=piped.stdout)
    assert again.returncode == 0 and "version 25" in again.stdout

    deleted = curriculum("runs", "delete", "kk-copy", url=url)
    assert deleted.returncode == 0 and deleted.stdout.strip() == "deleted run kk-copy"
    assert http.get(f"{url}/v1/runs/kk-copy", headers=OPERATOR).status_code == 404


def test_clear_errors_and_exit_codes(url: str, tmp_path: Path) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    down = curriculum("runs", "list", url=nobody)
    assert down.returncode == 3 and "cannot reach the service" in down.stderr
    wrong = curriculum("runs", "list", url=url, token="not-it")
    assert wrong.returncode == 4 and "refused the token" in wrong.stderr
    missing = curriculum("runs", "show", "kk", url=url, token=None)
    assert missing.returncode == 4 and "no token given" in missing.stderr
    unknown = curriculum("runs", "show", "no-such-run", url=url)
    assert unknown.returncode == 5 and "no run with id 'no-such-run'" in unknown.stderr
    as_json = curriculum("runs", "delete", "no-such-run", "--json", url=url)
    assert as_json.returncode == 5
    assert json.loads(as_json.stdout)["error"]["code"] == "run_not_found"
    (tmp_path / "bad.json").write_text("[1, 2]")
    bad = curriculum("runs", "import", "kk", str(tmp_path / "bad.json"), url=url)
    assert bad.returncode == 2 and "holds no snapshot" in bad.stderr
    usage = curriculum("runs", "show", url=url)
    assert usage.returncode == 2 and "usage:" in usage.stderr


@pytest.mark.parametrize(
    "args",
    [[], ["runs"], ["runs", "list"], ["runs", "show"], ["runs", "export"], ["runs", "import"],
     ["runs", "delete"], ["doctor"]],
)  # fmt: skip
def test_help_everywhere(args: list[str]) -> None:
    shown = curriculum(*args, "--help")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("usage: curriculum")
    if args[-1:] in (["list"], ["show"], ["doctor"]):
        assert "--json" in shown.stdout and "--token" in shown.stdout and "--url" in shown.stdout


def test_doctor_checks_redis_scripts_layout_and_clock(
    start_service: Callable[..., str], tmp_path: Path, http: httpx.Client
) -> None:
    own = RedisProcess(tmp_path / "redis")
    own.start()
    try:
        url = start_service(redis_url=own.url, admin_token=SecretStr(OPERATOR_TOKEN))
        http.post(f"{url}/v1/runs", json={"run_id": "a", "distributions": ["x"]}, headers=OPERATOR)
        client = redis.Redis.from_url(own.url)
        client.script_flush()
        healthy = curriculum("doctor", url=url)
        assert healthy.returncode == 0, healthy.stdout + healthy.stderr
        lines = healthy.stdout.splitlines()
        assert lines[0].startswith(f"service {url}: up")
        assert any(
            line.startswith("ok    redis: Redis 7") or "redis: Redis" in line for line in lines
        )
        n = len(SCRIPT_NAMES)
        assert any(f"scripts: {n} loaded; {n} were not loaded yet" in line for line in lines)
        assert any("store layout: 1 runs, all in layout 2" in line for line in lines)
        checks = json.loads(curriculum("doctor", "--json", url=url).stdout)["checks"]
        assert [c["status"] for c in checks] == ["ok"] * 4
        assert f"scripts: {n} loaded\n" in curriculum("doctor", url=url).stdout + "\n"

        client.hset("rc:{a}:meta", "layout", "1")  # as an older version would have left it
        old = curriculum("doctor", url=url)
        assert old.returncode == 1
        assert (
            "FAIL  store layout: 1 of 1 runs are stored in another layout than 2 (e.g. a)"
            in old.stdout
        )
        client.close()

        own.stop()
        down = curriculum("doctor", "--json", url=url)
        assert down.returncode == 1
        checks = json.loads(down.stdout)["checks"]
        assert checks[0]["name"] == "redis" and checks[0]["status"] == "fail"
        assert "Redis is unreachable" in checks[0]["detail"]
    finally:
        own.stop()


def test_only_the_operator_runs_the_doctor(url: str, http: httpx.Client) -> None:
    token = http.post(
        f"{url}/v1/runs", json={"run_id": "t", "distributions": ["x"]}, headers=OPERATOR
    ).json()["token"]
    refused = curriculum("doctor", url=url, token=token)
    assert refused.returncode == 4 and "operator token" in refused.stderr
    # a run's token still shows its run
    assert curriculum("runs", "show", "t", url=url, token=token).returncode == 0


def test_sparkline_scales_to_the_highest_weight() -> None:
    assert sparkline([0.0, 0.5, 1.0], high=1.0) == "▁▅█"
    assert sparkline([0.25, 0.25], high=0.5) == "▅▅"
    assert sparkline([], high=1.0) == ""
    long: list[Any] = [0.0] * 50 + [1.0] * 50
    assert sparkline(long, high=1.0, width=4) == "▁▁██"
