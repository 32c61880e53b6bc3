"""Per-run gauges on /metrics (behind CURRICULUM_RUN_METRICS), and the Grafana dashboard
that charts them."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr, ValidationError

from service.settings import Settings
from tests.conftest import ROOT, RedisProcess, create_run

DASHBOARD = ROOT / "docker" / "grafana" / "curriculum-dashboard.json"
SCRAPER = "scraper-secret"
OPERATOR = "op-secret"
AS_SCRAPER = {"Authorization": f"Bearer {SCRAPER}"}
WITH_RUN_METRICS = {"run_metrics": True, "metrics_token": SecretStr(SCRAPER)}


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _report(http: httpx.Client, url: str, run: str, headers: dict, step: int, adv: dict) -> None:
    body = {"report_id": f"{run}/{step}", "step": step, "advantages": adv, "rewards": adv}
    assert http.post(f"{url}/v1/runs/{run}/reports", json=body, headers=headers).status_code == 200


def test_no_run_gauges_unless_asked(http: httpx.Client, service_url: str) -> None:
    run, headers = create_run(http, service_url, ["a", "b"])
    _report(http, service_url, run, headers, 0, {"a": [1.0]})
    text = http.get(f"{service_url}/metrics").text
    assert "curriculum_requests_total" in text and "curriculum_reports_total" in text
    assert "curriculum_run_" not in text


def test_run_gauges_show_every_runs_weights_and_counts(
    http: httpx.Client, start_service: Callable[..., str]
) -> None:
    url = start_service(**WITH_RUN_METRICS)
    kk, kk_headers = create_run(http, url, ["kk-3", "kk-4"], run_id="kk")
    other, other_headers = create_run(http, url, ["x"], run_id="other")
    before = time.time()
    _report(http, url, kk, kk_headers, 0, {"kk-3": [1.0, 0.0], "kk-4": [0.5]})
    _report(http, url, kk, kk_headers, 1, {"kk-4": [0.25]})
    scraped = http.get(f"{url}/metrics", headers=AS_SCRAPER)
    assert scraped.status_code == 200
    samples = _samples(scraped.text)
    info = http.get(f"{url}/v1/runs/kk", headers=kk_headers).json()
    for name in ("kk-3", "kk-4"):
        labels = (("distribution", name), ("run", "kk"))
        assert samples[("curriculum_run_weight", labels)] == pytest.approx(info["weights"][name])
        stats = info["stats"][name]
        assert samples[("curriculum_run_samples", labels)] == stats["n"]
        assert samples[("curriculum_run_window_mean", labels)] == pytest.approx(
            stats["window_mean"]
        )
        assert samples[("curriculum_run_reward_mean", labels)] == pytest.approx(
            stats["reward_mean"]
        )
    assert samples[("curriculum_run_samples", (("distribution", "kk-4"), ("run", "kk")))] == 2
    assert samples[("curriculum_run_version", (("run", "kk"),))] == 2
    assert samples[("curriculum_run_version", (("run", "other"),))] == 0
    stamp = samples[("curriculum_run_last_report_timestamp_seconds", (("run", "kk"),))]
    assert before - 1 <= stamp <= time.time() + 1
    assert ("curriculum_run_last_report_timestamp_seconds", (("run", "other"),)) not in samples
    assert samples[("curriculum_run_gauges_up", ())] == 1
    # the request metrics are still there
    assert any(name == "curriculum_requests_total" for name, _ in samples)
    # a deleted run leaves the gauges
    assert http.delete(f"{url}/v1/runs/{other}", headers=other_headers).status_code == 200
    assert 'run="other"' not in http.get(f"{url}/metrics", headers=AS_SCRAPER).text


def test_metrics_answer_while_redis_is_down(
    http: httpx.Client, start_service: Callable[..., str], tmp_path: Path
) -> None:
    own = RedisProcess(tmp_path / "redis")
    own.start()
    try:
        url = start_service(redis_url=own.url, redis_timeout_s=0.5, **WITH_RUN_METRICS)
        create_run(http, url, ["a"])
        own.stop()
        scraped = http.get(f"{url}/metrics", headers=AS_SCRAPER)
        assert scraped.status_code == 200
        samples = _samples(scraped.text)
        assert samples[("curriculum_run_gauges_up", ())] == 0
        assert not any(name.startswith("curriculum_run_weight") for name, _ in samples)
        assert any(name == "curriculum_requests_total" for name, _ in samples)
    finally:
        own.stop()


def test_the_grafana_dashboard_charts_metrics_the_service_exports(
    http: httpx.Client, start_service: Callable[..., str]
) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    url = start_service(**WITH_RUN_METRICS)
    run, headers = create_run(http, url, ["a", "b"])
    _report(http, url, run, headers, 0, {"a": [1.0]})
    http.post(f"{url}/v1/runs/{run}/plan", json={"step": 0, "batch_size": 4}, headers=headers)
    scraped = http.get(f"{url}/metrics", headers=AS_SCRAPER).text
    exported = {name for name, _ in _samples(scraped)}
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs.append(dashboard["templating"]["list"][1]["query"]["query"])
    used = {m for expr in exprs for m in re.findall(r"\bcurriculum_[a-z_]+", expr)}
    assert used and used <= exported, used - exported
    # every per-run panel is filtered by the dashboard's run variable
    per_run = [e for e in exprs if "curriculum_run_" in e and "gauges_up" not in e]
    assert all('run="$run"' in e for e in per_run[:-1])
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_run_metrics_are_refused_without_a_token_to_protect_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """They name every run and distribution: no deployment shows them to anyone."""
    for name in ("ADMIN_TOKEN", "CURRICULUM_ADMIN_TOKEN", "CURRICULUM_METRICS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValidationError, match="CURRICULUM_METRICS_TOKEN"):
        Settings(_env_file=None, run_metrics=True)
    assert Settings(_env_file=None, run_metrics=True, metrics_token=SCRAPER).run_metrics
    assert Settings(_env_file=None, run_metrics=True, admin_token=OPERATOR).run_metrics
    monkeypatch.setenv("CURRICULUM_RUN_METRICS", "true")
    monkeypatch.setenv("CURRICULUM_METRICS_TOKEN", SCRAPER)
    read = Settings(_env_file=None).metrics_token
    assert read is not None and read.get_secret_value() == SCRAPER


@pytest.mark.parametrize("run_metrics", [True, False])
def test_metrics_need_the_scrapers_or_the_operators_token(
    http: httpx.Client, start_service: Callable[..., str], run_metrics: bool
) -> None:
    url = start_service(
        run_metrics=run_metrics,
        metrics_token=SecretStr(SCRAPER),
        admin_token=SecretStr(OPERATOR),
    )
    operator = {"Authorization": f"Bearer {OPERATOR}"}
    body = {"run_id": "secret-run", "distributions": ["secret-dist"]}
    created = http.post(f"{url}/v1/runs", json=body, headers=operator).json()
    run, run_headers = created["run_id"], {"Authorization": f"Bearer {created['token']}"}
    _report(http, url, run, run_headers, 0, {"secret-dist": [1.0]})
    refused = {
        "no token": (http.get(f"{url}/metrics"), 401),
        "a run's token": (http.get(f"{url}/metrics", headers=run_headers), 403),
        "another token": (http.get(f"{url}/metrics", headers={"Authorization": "Bearer x"}), 403),
    }
    for name, (reply, status) in refused.items():
        assert reply.status_code == status, (name, reply.text)
        assert "secret-run" not in reply.text and "secret-dist" not in reply.text
        assert "CURRICULUM_METRICS_TOKEN" in reply.json()["error"]["message"]
    assert refused["no token"][0].headers["www-authenticate"] == "Bearer"
    for headers in (AS_SCRAPER, operator):
        scraped = http.get(f"{url}/metrics", headers=headers)
        assert scraped.status_code == 200
        assert ('run="secret-run"' in scraped.text) == run_metrics
        assert "curriculum_requests_total" in scraped.text
    # the scraper's token grants /metrics, and no run
    assert http.get(f"{url}/v1/runs/{run}", headers=AS_SCRAPER).status_code == 403
