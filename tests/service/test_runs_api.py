"""Creating, reading and deleting runs; tokens and the operator token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.conftest import create_run

DISTS = ["easy", "medium", "hard"]


def test_create_returns_a_token_once(http: httpx.Client, service_url: str) -> None:
    """The first create is 201 with a token; the same config again is a 200 no-op, no token."""
    body = {"run_id": "r1", "distributions": DISTS, "seed": 3}
    first = http.post(f"{service_url}/v1/runs", json=body)
    assert first.status_code == 201
    token = first.json()["token"]
    assert token.startswith("rct_") and len(token) > 40
    assert first.json()["config"]["strategy"] == {
        "name": "dump-guard", "window": 300, "c": 1.0, "tau": 0.1, "tau_guard": 0.5,
        "guard_tol": 0.1, "guard_width": 0.1, "regress_bonus": 1.0, "signal": "advantage",
        "reward_alpha": 0.1,
    }  # fmt: skip
    again = http.post(f"{service_url}/v1/runs", json=body)
    assert again.status_code == 200
    assert again.json()["created"] is False and again.json()["token"] is None
    # the original token still works, and the run was not reset
    got = http.get(f"{service_url}/v1/runs/r1", headers={"Authorization": f"Bearer {token}"})
    assert got.status_code == 200 and got.json()["config"]["seed"] == 3


def test_create_with_another_config_conflicts(http: httpx.Client, service_url: str) -> None:
    http.post(f"{service_url}/v1/runs", json={"run_id": "r1", "distributions": DISTS})
    other = http.post(
        f"{service_url}/v1/runs",
        json={"run_id": "r1", "distributions": DISTS, "strategy": "uniform"},
    )
    assert other.status_code == 409
    assert "another configuration" in other.json()["error"]["message"]


def test_a_conflict_shows_the_configuration_only_to_who_may_read_the_run(
    http: httpx.Client, service_url: str
) -> None:
    """Open mode: anyone may try to create ``r1``, but only its own token learns the
    existing run's strategy and seed from the 409."""
    first = http.post(
        f"{service_url}/v1/runs", json={"run_id": "r1", "distributions": DISTS, "seed": 7}
    )
    own = {"Authorization": f"Bearer {first.json()['token']}"}
    other_run = http.post(f"{service_url}/v1/runs", json={"distributions": DISTS}).json()
    body = {"run_id": "r1", "distributions": DISTS, "strategy": "uniform"}
    for headers in ({}, {"Authorization": f"Bearer {other_run['token']}"}):
        hidden = http.post(f"{service_url}/v1/runs", json=body, headers=headers)
        assert hidden.status_code == 409
        assert hidden.json()["error"]["details"] is None
        assert "seed" not in hidden.text and "dump-guard" not in hidden.text
    shown = http.post(f"{service_url}/v1/runs", json=body, headers=own)
    assert shown.status_code == 409
    assert shown.json()["error"]["details"]["seed"] == 7
    assert shown.json()["error"]["details"]["strategy"]["name"] == "dump-guard"


def test_run_id_is_generated_when_absent(http: httpx.Client, service_url: str) -> None:
    reply = http.post(f"{service_url}/v1/runs", json={"distributions": DISTS})
    assert reply.status_code == 201
    assert reply.json()["run_id"].startswith("run-")


def test_strategy_as_a_string_or_object(http: httpx.Client, service_url: str) -> None:
    run, headers = create_run(http, service_url, DISTS, strategy={"name": "dump-ucb", "tau": 0.5})
    assert (
        http.get(f"{service_url}/v1/runs/{run}", headers=headers).json()["config"]["strategy"][
            "tau"
        ]
        == 0.5
    )
    run, headers = create_run(http, service_url, DISTS, strategy="uniform")
    info = http.get(f"{service_url}/v1/runs/{run}", headers=headers).json()
    assert info["config"]["strategy"] == {"name": "uniform", "window": 300, "reward_alpha": 0.1}


def test_calls_need_the_runs_token(http: httpx.Client, service_url: str) -> None:
    """No token: 401. Another run's token: 403, as for a run that does not exist. Its own: 200."""
    run_a, headers_a = create_run(http, service_url, DISTS)
    _, headers_b = create_run(http, service_url, DISTS)
    url = f"{service_url}/v1/runs/{run_a}"
    missing = http.get(url)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert http.get(url, headers={"Authorization": "Basic abc"}).status_code == 401
    assert http.get(url, headers=headers_b).status_code == 403
    assert (
        http.post(f"{url}/plan", json={"step": 0, "batch_size": 4}, headers=headers_b).status_code
        == 403
    )
    assert http.delete(url, headers=headers_b).status_code == 403
    # word for word what a run that does not exist gets: nothing tells that run_a exists
    known = http.get(url, headers=headers_b).json()
    unknown = http.get(f"{service_url}/v1/runs/no-such-run", headers=headers_b).json()
    assert unknown["error"]["message"].replace("no-such-run", run_a) == known["error"]["message"]
    assert unknown["error"]["code"] == known["error"]["code"] == "forbidden"
    assert http.get(url, headers=headers_a).status_code == 200


def test_operator_token_gates_creation_and_sees_every_run(
    http: httpx.Client, start_service: Callable[..., str]
) -> None:
    from pydantic import SecretStr

    url = start_service(admin_token=SecretStr("op-secret"))
    body = {"run_id": "team-a", "distributions": DISTS}
    assert http.post(f"{url}/v1/runs", json=body).status_code == 401
    wrong = {"Authorization": "Bearer not-the-operator"}
    assert http.post(f"{url}/v1/runs", json=body, headers=wrong).status_code == 403
    op = {"Authorization": "Bearer op-secret"}
    created = http.post(f"{url}/v1/runs", json=body, headers=op)
    assert created.status_code == 201
    own = {"Authorization": f"Bearer {created.json()['token']}"}
    assert http.get(f"{url}/v1/runs/team-a", headers=op).status_code == 200
    assert http.get(f"{url}/v1/runs/team-a", headers=own).status_code == 200
    # a run's own token cannot create runs on a gated deployment
    body2 = {"run_id": "team-b", "distributions": DISTS}
    assert http.post(f"{url}/v1/runs", json=body2, headers=own).status_code == 403
    assert http.delete(f"{url}/v1/runs/team-a", headers=op).status_code == 200
    assert http.get(f"{url}/v1/runs/team-a", headers=op).status_code == 404


def test_token_is_stored_hashed(http: httpx.Client, service_url: str, redis_url: str) -> None:
    import redis

    reply = http.post(f"{service_url}/v1/runs", json={"run_id": "r1", "distributions": DISTS})
    token = reply.json()["token"]
    client = redis.Redis.from_url(redis_url)
    try:
        dump = b"".join(client.dump(key) or b"" for key in client.scan_iter(match="rc:{r1}:*"))
    finally:
        client.close()
    assert token.encode() not in dump
    import hashlib

    assert hashlib.sha256(token.encode()).hexdigest().encode() in dump


def test_delete_removes_every_key(http: httpx.Client, service_url: str, redis_url: str) -> None:
    import redis

    run, headers = create_run(http, service_url, DISTS, run_id="gone")
    http.post(
        f"{service_url}/v1/runs/{run}/plan", json={"step": 0, "batch_size": 8}, headers=headers
    )
    http.post(
        f"{service_url}/v1/runs/{run}/reports",
        json={"report_id": "a", "step": 0, "advantages": {"easy": [1.0]}},
        headers=headers,
    )
    client = redis.Redis.from_url(redis_url)
    try:
        assert len(list(client.scan_iter(match="rc:{gone}:*"))) >= 5
        assert http.delete(f"{service_url}/v1/runs/{run}", headers=headers).json() == {
            "run_id": "gone", "deleted": True,
        }  # fmt: skip
        assert list(client.scan_iter(match="rc:{gone}:*")) == []
    finally:
        client.close()
    # its own token now grants nothing: the answer of any run it does not grant
    assert http.get(f"{service_url}/v1/runs/{run}", headers=headers).status_code == 403


def test_recreated_run_is_not_served_from_a_stale_cache(
    http: httpx.Client, service_url: str
) -> None:
    """Delete and create again under one id: the old token stops working, the new config shows."""
    _, old_headers = create_run(http, service_url, DISTS, run_id="again")
    assert http.get(f"{service_url}/v1/runs/again", headers=old_headers).status_code == 200
    http.delete(f"{service_url}/v1/runs/again", headers=old_headers)
    _, new_headers = create_run(http, service_url, ["x", "y"], run_id="again")
    assert http.get(f"{service_url}/v1/runs/again", headers=old_headers).status_code == 403
    info = http.get(f"{service_url}/v1/runs/again", headers=new_headers).json()
    assert info["config"]["distributions"] == ["x", "y"]


def _forgetting_reports() -> list[dict[str, Any]]:
    """Eight reports, four samples a distribution: ``easy`` at reward 1.0, then left out for
    two reports (32 samples) and back at 0.75, left out for three (48) and back at 0.25, its
    reward falling over both gaps; ``medium`` and ``hard`` in every report, steady."""
    plan = [1.0, None, None, 0.75, None, None, None, 0.25]
    out = []
    for step, easy in enumerate(plan):
        rewards = {"medium": [0.5] * 4, "hard": [0.0, 1.0, 0.0, 1.0]}
        if easy is not None:
            rewards["easy"] = [easy] * 4
        advantages = {name: [0.5, -0.5, 0.25, -0.25] for name in rewards}
        out.append({"report_id": f"r{step}", "step": step, "advantages": advantages,
                    "rewards": rewards})  # fmt: skip
    return out


def test_the_run_shows_each_distributions_rehearsal_share(
    http: httpx.Client, service_url: str
) -> None:
    """A dump-rehearse run: ``easy``, whose reward fell over both of its gaps, has a positive
    rehearsal share, the one the core computes from the same reports; the two never left out
    have none. A dump-ucb run given the same reports shows 0 for every distribution."""
    from curriculum_core import RunModel, rehearsal_share

    strategy = {"name": "dump-rehearse", "confidence": 8.0}
    model = RunModel(DISTS, strategy)
    run, headers = create_run(http, service_url, DISTS, strategy=strategy)
    dump_run, dump_headers = create_run(http, service_url, DISTS, strategy="dump-ucb")
    for body in _forgetting_reports():
        assert model.apply(body["report_id"], body["advantages"], body["rewards"])
        for target, auth in ((run, headers), (dump_run, dump_headers)):
            reply = http.post(f"{service_url}/v1/runs/{target}/reports", json=body, headers=auth)
            assert reply.status_code == 200, reply.text
    expected = rehearsal_share(model.strategy, model.k, model.state)
    stats = http.get(f"{service_url}/v1/runs/{run}", headers=headers).json()["stats"]
    shares = {name: stats[name]["rehearsal_share"] for name in DISTS}
    assert shares["easy"] > 0 and shares["medium"] == shares["hard"] == 0.0
    for i, name in enumerate(DISTS):
        assert abs(shares[name] - expected[i]) <= 1e-12, name
    assert shares["easy"] < 1 / len(DISTS)  # t (4.17) < confidence: not yet the whole 1 / K
    dump_stats = http.get(f"{service_url}/v1/runs/{dump_run}", headers=dump_headers).json()
    assert [dump_stats["stats"][name]["rehearsal_share"] for name in DISTS] == [0.0] * 3


def test_health_and_metrics(http: httpx.Client, service_url: str) -> None:
    assert http.get(f"{service_url}/healthz").json() == {"status": "ok"}
    assert http.get(f"{service_url}/readyz").json() == {"status": "ready"}
    run, headers = create_run(http, service_url, DISTS)
    http.post(
        f"{service_url}/v1/runs/{run}/reports",
        json={"report_id": "m1", "step": 0, "advantages": {"easy": [1.0]}},
        headers=headers,
    )
    text = http.get(f"{service_url}/metrics").text
    assert 'curriculum_reports_total{status="applied"} 1.0' in text
    assert 'route="/v1/runs/{run_id}/reports"' in text


def test_openapi_has_examples(http: httpx.Client, service_url: str) -> None:
    spec = http.get(f"{service_url}/openapi.json").json()
    assert "/v1/runs/{run_id}/plan" in spec["paths"]
    schema = spec["components"]["schemas"]["CreateRunRequest"]
    assert schema["examples"][0]["distributions"][0] == "kk-3"
    # the bearer token is documented as a security scheme on every call on a run
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    run_calls = [
        ("/v1/runs/{run_id}/plan", "post"),
        ("/v1/runs/{run_id}", "get"),
        ("/v1/runs/{run_id}/reports", "post"),
        ("/v1/runs/{run_id}/import", "put"),
    ]
    for path, method in run_calls:
        assert spec["paths"][path][method]["security"] == [{"bearer": []}], path
    assert spec["paths"]["/v1/runs"]["post"]["security"] == [{"bearer": []}, {}]
    assert "security" not in spec["paths"]["/healthz"]["get"]


def test_a_run_of_another_storage_layout_is_refused_untouched(
    http: httpx.Client, service_url: str, redis_url: str
) -> None:
    """A run written by a version with another key layout (here: layout 1, windows as a
    hash) gets a 409 that says what to do, and its keys stay as they were."""
    import redis

    run, headers = create_run(http, service_url, DISTS, run_id="old-layout")
    client = redis.Redis.from_url(redis_url)
    try:
        client.hset("rc:{old-layout}:meta", "layout", "1")
        client.delete("rc:{old-layout}:windows")
        client.hset("rc:{old-layout}:windows", "0", b"\0" * 16)
        before = _contents(client, "rc:{old-layout}:*")
        report = {"report_id": "a", "step": 0, "advantages": {"easy": [1.0]}}
        calls = [
            http.post(f"{service_url}/v1/runs/{run}/reports", json=report, headers=headers),
            http.post(
                f"{service_url}/v1/runs/{run}/plan", json={"step": 0, "batch_size": 4},
                headers=headers,
            ),
            http.get(f"{service_url}/v1/runs/{run}", headers=headers),
            http.get(f"{service_url}/v1/runs/{run}/export", headers=headers),
        ]  # fmt: skip
        for reply in calls:
            assert reply.status_code == 409, reply.text
            assert "storage layout" in reply.json()["error"]["message"]
            assert "export the run with the version that created it" in reply.text
        after = _contents(client, "rc:{old-layout}:*")
        assert after == before
    finally:
        client.close()


def _contents(client: Any, pattern: str) -> dict[bytes, Any]:
    """What each matching key holds (a hash as a dict: DUMP may order its fields anew)."""
    out: dict[bytes, Any] = {}
    for key in client.scan_iter(match=pattern):
        kind = client.type(key)
        out[key] = client.hgetall(key) if kind == b"hash" else client.dump(key)
    return out


def test_openapi_states_every_status_and_405_says_what_is_allowed(
    http: httpx.Client, service_url: str
) -> None:
    """The schema documents the statuses the service answers (a create's 200 and 409, a
    plan's 410, an import's 409, the text of /metrics), and a 405 carries Allow."""
    schema = http.get(f"{service_url}/openapi.json").json()
    paths = schema["paths"]
    assert {"200", "201", "409"} <= set(paths["/v1/runs"]["post"]["responses"])
    assert "410" in paths["/v1/runs/{run_id}/plan"]["post"]["responses"]
    assert "409" in paths["/v1/runs/{run_id}/import"]["put"]["responses"]
    assert "text/plain" in paths["/metrics"]["get"]["responses"]["200"]["content"]
    window = schema["components"]["schemas"]["SnapshotDistribution"]["properties"]["window"]
    assert window["items"]["minimum"] == 0
    refused = http.request("PATCH", f"{service_url}/v1/runs/any/plan")
    assert refused.status_code == 405
    assert refused.headers["Allow"] == "POST"
    assert refused.json()["error"]["code"] == "http_error"
    # one path, two routes (GET and DELETE): Allow names both
    both = http.request("PATCH", f"{service_url}/v1/runs/any")
    assert both.status_code == 405 and both.headers["Allow"] == "DELETE, GET"
    # the schema says integer: "1" is refused (a lax int would read it), 1.0 is an integer
    plan = f"{service_url}/v1/runs/any/plan"
    assert http.post(plan, json={"step": "1", "batch_size": 4}).status_code == 422
    assert http.post(plan, json={"step": True, "batch_size": 4}).status_code == 422
    assert http.post(plan, json={"step": 1.0, "batch_size": 4}).status_code == 401  # no token


def test_the_schema_states_the_integer_bounds(http: httpx.Client, service_url: str) -> None:
    """Step and seed bounds appear as JSON Schema's minimum and maximum."""
    schemas = http.get(f"{service_url}/openapi.json").json()["components"]["schemas"]
    step = schemas["PlanRequest"]["properties"]["step"]
    assert (step["minimum"], step["maximum"]) == (0, 2**53)
    seed = schemas["CreateRunRequest"]["properties"]["seed"]
    assert (seed["minimum"], seed["maximum"]) == (0, 2**53 - 1)


def test_the_schema_states_this_deployments_limits(
    http: httpx.Client, start_service: Callable[..., str]
) -> None:
    """The limits a deployment sets appear in its schema, and names are declared unique."""
    url = start_service(max_batch_size=512, max_distributions=40)
    schemas = http.get(f"{url}/openapi.json").json()["components"]["schemas"]
    assert schemas["PlanRequest"]["properties"]["batch_size"]["maximum"] == 512
    names = schemas["CreateRunRequest"]["properties"]["distributions"]
    assert names["maxItems"] == 40 and names["uniqueItems"] is True


def test_the_schema_states_each_strategys_parameters_exactly(
    http: httpx.Client, service_url: str
) -> None:
    """One object form per strategy, with exactly the parameters curriculum_core declares
    (no others), their kinds, defaults and ranges; a value outside them is a 422, a value of
    the wrong type too (never a 500)."""
    from curriculum_core import STRATEGIES
    from curriculum_core.params import parameters_of

    schemas = http.get(f"{service_url}/openapi.json").json()["components"]["schemas"]
    choice = schemas["CreateRunRequest"]["properties"]["strategy"]["oneOf"]
    assert choice[0]["enum"] == list(STRATEGIES)
    refs = {ref["$ref"].rsplit("/", 1)[1] for ref in choice[1:]}
    assert len(refs) == len(STRATEGIES)
    forms = {schemas[ref]["properties"]["name"]["const"]: schemas[ref] for ref in refs}
    assert set(forms) == set(STRATEGIES)
    for name, cls in STRATEGIES.items():
        form = forms[name]
        assert form["additionalProperties"] is False and form["required"] == ["name"]
        params = {p.name: p for p in parameters_of(cls)}
        assert set(form["properties"]) == {"name", *params}
        for p in params.values():
            prop = form["properties"][p.name]
            assert prop["default"] == p.default
            if p.choices:
                assert prop["enum"] == list(p.choices)
                continue
            assert prop["type"] == ("integer" if p.kind is int else "number")
            assert prop.get("minimum") == p.range.minimum
            assert prop.get("exclusiveMinimum") == p.range.exclusive_minimum
            assert prop.get("maximum") == p.range.maximum
            assert prop.get("exclusiveMaximum") == p.range.exclusive_maximum
    dump = forms["dump-ucb"]["properties"]
    assert (dump["window"]["minimum"], dump["window"]["maximum"]) == (1, 10_000)
    assert dump["tau"]["exclusiveMinimum"] == 0 and "minimum" not in dump["tau"]
    assert (dump["floor"]["minimum"], dump["floor"]["exclusiveMaximum"]) == (0, 1)

    def create(strategy: object) -> httpx.Response:
        body = {"distributions": ["a"], "strategy": strategy}
        return http.post(f"{service_url}/v1/runs", json=body)

    assert create({"name": "dump-ucb", "c": "1.5"}).status_code == 422
    assert create({"name": "dump-ucb", "window": True}).status_code == 422
    assert create({"name": "uniform", "tau": 1.0}).status_code == 422
    assert create({"name": "exp3s", "history": 1}).status_code == 422
    missing = create({"window": 10})
    assert missing.status_code == 422 and "'name'" in missing.json()["error"]["message"]
    wrong = create({"name": "sec", "lr": 2.0})
    assert wrong.status_code == 422
    assert wrong.json()["error"]["message"].startswith("body.strategy.sec.lr:")
    made = create({"name": "exp3s", "history": 10.0, "eta": 1})
    assert made.status_code == 201, made.text
    assert made.json()["config"]["strategy"]["history"] == 10


def test_the_schema_states_that_a_report_carries_a_value(
    http: httpx.Client, service_url: str
) -> None:
    """A report whose advantage lists are all empty is refused, as its schema says (``not``
    every list empty); an empty list beside a full one is taken; numbers are JSON numbers."""
    schemas = http.get(f"{service_url}/openapi.json").json()["components"]["schemas"]
    advantages = schemas["ReportRequest"]["properties"]["advantages"]
    assert advantages["not"] == {"additionalProperties": {"maxItems": 0}}
    run, headers = create_run(http, service_url, DISTS)
    url = f"{service_url}/v1/runs/{run}/reports"

    def report(advantages: object, report_id: str = "r") -> httpx.Response:
        body = {"report_id": report_id, "step": 0, "advantages": advantages}
        return http.post(url, json=body, headers=headers)

    for empty in ({}, {"easy": []}, {"easy": [], "hard": []}):
        refused = report(empty)
        assert refused.status_code == 422
        assert "at least one advantage value" in refused.json()["error"]["message"]
    assert report({"easy": ["1.5"]}).status_code == 422
    assert report({"easy": [True]}).status_code == 422
    taken = report({"easy": [], "hard": [1]}, "r2")
    assert taken.status_code == 200 and taken.json()["version"] == 1
