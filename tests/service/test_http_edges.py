"""The HTTP layer's own answers: bodies it cannot read, and paths with a trailing slash."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import create_run

UNREADABLE: dict[str, bytes] = {
    "truncated": b'{"step": 1,',
    "single quotes": b"{'step': 1}",
    "not UTF-8": b'{"report_id": "\xff\xfe"}',
    "nested 100,000 deep": b"[" * 100_000 + b"]" * 100_000,
}


def _body_routes(openapi: dict[str, Any]) -> list[tuple[str, str]]:
    """Every (method, path template) of the schema that takes a request body."""
    return [
        (method.upper(), path)
        for path, operations in openapi["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation
    ]


def test_every_body_route_answers_malformed_json_for_a_body_it_cannot_read(
    http: httpx.Client, service_url: str
) -> None:
    run, headers = create_run(http, service_url, ["a", "b"], run_id="kk")
    routes = _body_routes(http.get(f"{service_url}/openapi.json").json())
    assert {m for m, _ in routes} == {"POST", "PUT"} and len(routes) >= 4, routes
    before = http.get(f"{service_url}/v1/runs/{run}/export", headers=headers).json()
    for method, template in routes:
        for name, body in UNREADABLE.items():
            reply = http.request(
                method,
                service_url + template.replace("{run_id}", run),
                content=body,
                headers={**headers, "content-type": "application/json"},
            )
            assert reply.status_code == 400, (method, template, name, reply.text)
            error = reply.json()["error"]
            assert error["code"] == "malformed_json", (method, template, name, error)
            assert error["message"].startswith("the request body is not valid JSON: "), error
    assert http.get(f"{service_url}/v1/runs/{run}/export", headers=headers).json() == before


def test_an_unreadable_body_says_why(http: httpx.Client, service_url: str) -> None:
    url = f"{service_url}/v1/runs"
    json_type = {"content-type": "application/json"}
    not_utf8 = http.post(url, content=UNREADABLE["not UTF-8"], headers=json_type).json()
    assert "not UTF-8 text" in not_utf8["error"]["message"]
    deep = http.post(url, content=UNREADABLE["nested 100,000 deep"], headers=json_type).json()
    assert "too deeply" in deep["error"]["message"]


def test_a_trailing_slash_is_a_404_that_never_echoes_the_host_header(
    http: httpx.Client, service_url: str
) -> None:
    """A redirect built from ``Host`` would send a client (or a cache) to any host."""
    run, headers = create_run(http, service_url, ["a"], run_id="kk")
    openapi = http.get(f"{service_url}/openapi.json").json()
    paths = [p.replace("{run_id}", run) for p in openapi["paths"]] + ["/ui/runs/kk"]
    evil = {**headers, "Host": "evil.example"}
    for path in paths:
        for method in ("GET", "POST", "PUT", "DELETE"):
            reply = http.request(method, f"{service_url}{path}/", headers=evil)
            shown = [f"{k}: {v}" for k, v in reply.headers.multi_items()]
            assert not any("evil.example" in line for line in shown), (method, path, shown)
            assert reply.status_code == 404, (method, path, reply.status_code)
            assert reply.json()["error"]["code"] == "not_found"
    # the dashboard's own redirect stays, and names no host
    ui = http.get(f"{service_url}/ui/", headers=evil)
    assert (ui.status_code, ui.headers["location"]) == (307, "/ui")
