"""Make docs/img/dashboard.png: a service on an embedded Redis, a run fed 160 steps by a
toy learner (two ranks, GRPO groups of 8), its dashboard page in headless Chromium.

    python scripts/dashboard_screenshot.py [--out docs/img/dashboard.png]

The toy learner: bucket j is solved with probability p_j, which grows with each sample of
it while it is learnable (p between 0.05 and 0.95) and sits still otherwise; kk-3 starts
solved, kk-8 unreachable.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DISTS = ["kk-3", "kk-4", "kk-5", "kk-6", "kk-7", "kk-8"]
START = {"kk-3": 0.97, "kk-4": 0.6, "kk-5": 0.3, "kk-6": 0.12, "kk-7": 0.06, "kk-8": 0.0}
TOKEN = "screenshot-operator"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def feed(url: str, steps: int, seed: int = 0) -> None:
    """Create run ``kk`` and report ``steps`` steps of the toy learner into it."""
    rng = np.random.default_rng(seed)
    op = {"Authorization": f"Bearer {TOKEN}"}
    body = {"run_id": "kk", "distributions": DISTS, "strategy": {"name": "dump-ucb", "window": 200}}
    httpx.post(f"{url}/v1/runs", json=body, headers=op).raise_for_status()
    p = dict(START)
    for step in range(steps):
        plan = httpx.post(
            f"{url}/v1/runs/kk/plan", json={"step": step, "batch_size": 16}, headers=op
        )
        assignment = plan.json()["assignment"]
        for rank in (0, 1):
            adv: dict[str, list[float]] = {}
            rew: dict[str, list[float]] = {}
            for name in assignment[rank::2]:
                r = (rng.random(8) < p[name]).astype(float)
                a = (r - r.mean()) / (r.std() + 1e-6)
                adv.setdefault(name, []).extend(a.tolist())
                rew.setdefault(name, []).extend(r.tolist())
                if 0.02 < p[name] < 0.98:
                    p[name] = min(0.99, p[name] + 0.0012)
            report = {"report_id": f"kk/{step}/{rank}", "step": step, "rank": rank,
                      "advantages": adv, "rewards": rew}  # fmt: skip
            httpx.post(f"{url}/v1/runs/kk/reports", json=report, headers=op).raise_for_status()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "dashboard.png")
    parser.add_argument("--steps", type=int, default=160)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data:
        env = {**os.environ, "ADMIN_TOKEN": TOKEN, "CURRICULUM_DATA_DIR": data}
        env.pop("REDIS_URL", None)
        cmd = [sys.executable, "-m", "service", "--port", str(port), "--log-level", "warning"]
        service = subprocess.Popen(cmd, env=env, cwd=ROOT)
        try:
            for _ in range(200):
                try:
                    if httpx.get(f"{url}/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            feed(url, args.steps)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=shutil.which("chromium"), args=["--no-sandbox"]
                )
                page = browser.new_page(viewport={"width": 1200, "height": 900})
                page.goto(f"{url}/ui/runs/kk#token={TOKEN}")
                page.wait_for_selector("[data-testid=weights-chart] [data-distribution]")
                page.wait_for_timeout(1500)
                page.screenshot(path=str(args.out), full_page=True)
                browser.close()
        finally:
            service.terminate()
            service.wait(timeout=20)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
