"""The clients against a real service process: values, errors, retries, async."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import httpx
import numpy as np
import pytest

from curriculum_core import (
    DumpUcb,
    RunModel,
    compose_batch,
    plan_rng,
    weights,
)
from trainer_client import (
    AsyncCurriculumClient,
    AuthError,
    CurriculumClient,
    InvalidRequest,
    LocalService,
    RunConflict,
    ServiceUnavailable,
    TokenRequired,
)

NAMES = ["kk-3", "kk-4", "kk-5", "kk-6"]
STRATEGY = {"name": "dump-ucb", "window": 4, "c": 0.5, "tau": 0.2}


class RecordingTransport(httpx.HTTPTransport):
    """Forwards to the real service and records each request; can lose report answers.

    With ``lose_report_answers=k`` the first ``k`` report requests reach the service (and
    are applied there) but their answers are dropped and a read timeout is raised, as when
    a response is lost on the network.
    """

    def __init__(self, lose_report_answers: int = 0) -> None:
        super().__init__()
        self.lose = lose_report_answers
        self.requests: list[tuple[str, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.requests.append((request.method, request.url.path))
        if self.lose and request.url.path.endswith("/reports"):
            self.lose -= 1
            response.read()
            response.close()
            raise httpx.ReadTimeout("answer lost", request=request)
        return response


def _expected_weights(reports: list[dict[str, list[float]]]) -> np.ndarray:
    model = RunModel(NAMES, STRATEGY)
    for i, report in enumerate(reports):
        model.apply(f"reference-{i}", report)
    return weights(DumpUcb(window=4, c=0.5, tau=0.2), model.stats())


def test_importing_trainer_client_pulls_in_no_service_dependencies() -> None:
    """`import trainer_client` loads neither FastAPI, Redis, pydantic nor torch."""
    code = (
        "import sys, trainer_client; "
        "print(sorted(m for m in ('fastapi', 'redis', 'pydantic', 'torch', 'service.app') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_round_trip_create_attach_plan_report_export_import(service_url: str) -> None:
    """Every call of the client agrees with the scheduling math computed in-process."""
    with CurriculumClient.create_or_attach(
        service_url, NAMES, run_id="round-trip", strategy=STRATEGY, seed=3
    ) as client:
        assert client.token is not None and client.token.startswith("rct_")

        plan = client.plan(0, 16)
        uniform = np.full(len(NAMES), 0.25)
        expected = [NAMES[i] for i in compose_batch(uniform, 16, plan_rng(3, 0, 16))]
        assert plan.source == "service" and plan.assignment == expected
        assert plan.counts == {n: expected.count(n) for n in NAMES if n in expected}
        assert client.plan(0, 16) == plan

        reports = [
            {"kk-3": [0.5, -0.5, 1.5], "kk-4": [0.0, 0.0]},
            {"kk-5": [2.0, -2.0, 2.0, -2.0, 2.0], "kk-6": [0.1]},
        ]
        first = client.report(0, reports[0], rewards={"kk-3": [1.0, 0.0, 1.0]})
        assert first.status == "applied" and first.report_id == "round-trip/step-0/rank-0"
        second = client.report(0, reports[1])
        assert second.report_id == "round-trip/step-0/rank-0/1" and second.version == 2
        np.testing.assert_allclose(
            [second.weights[n] for n in NAMES], _expected_weights(reports), rtol=1e-6
        )
        lean = client.report(0, {"kk-6": [0.0]}, report_id="lean", with_weights=False)
        assert lean.status == "applied" and lean.version == 3 and lean.weights == {}
        reports.append({"kk-6": [0.0]})
        np.testing.assert_allclose(
            [client.weights()[n] for n in NAMES], _expected_weights(reports), rtol=1e-6
        )
        info = client.run_info()
        assert {n: s["n"] for n, s in info["stats"].items()} == {
            "kk-3": 3, "kk-4": 2, "kk-5": 5, "kk-6": 2
        }  # fmt: skip
        assert info["stats"]["kk-5"]["window_mean"] == pytest.approx(2.0)
        assert [e["step"] for e in client.history()["entries"]] == [0]

        snapshot = client.export()
        assert snapshot["distributions"]["kk-5"]["window"] == [2.0, 2.0, 2.0, 2.0]
        client.report(1, {"kk-3": [3.0, 3.0, 3.0, 3.0]})
        assert client.run_info()["stats"]["kk-3"]["n"] == 7
        client.import_(snapshot)
        assert client.run_info()["stats"]["kk-3"]["n"] == 3
        np.testing.assert_allclose(
            [client.weights()[n] for n in NAMES], _expected_weights(reports), rtol=1e-6
        )

        # Attaching: with the run's token it works, without one it says what is missing.
        with CurriculumClient.create_or_attach(
            service_url, NAMES, run_id="round-trip", strategy=STRATEGY, seed=3, token=client.token
        ) as again:
            assert again.run_info()["version"] == client.run_info()["version"]
        with pytest.raises(TokenRequired, match="pass its token"):
            CurriculumClient.create_or_attach(
                service_url, NAMES, run_id="round-trip", strategy=STRATEGY, seed=3
            )
        with pytest.raises(RunConflict) as conflict:
            CurriculumClient.create_or_attach(
                service_url, NAMES[:2], run_id="round-trip", token=client.token
            )
        assert conflict.value.status == 409

        client.delete()
        with pytest.raises(AuthError) as gone:  # its token grants nothing any more
            client.run_info()
        assert gone.value.status == 403 and "does not exist" in gone.value.message


def test_4xx_raise_with_status_code_and_message_and_are_never_retried(service_url: str) -> None:
    """A refused request raises at once, carrying the service's error; bad input stays local."""
    transport = RecordingTransport()
    with CurriculumClient.create_or_attach(service_url, NAMES, run_id="errors") as owner:
        with CurriculumClient(
            service_url, "errors", None, transport=transport, retries=3
        ) as client:
            with pytest.raises(AuthError) as refused:
                client.run_info()
            assert refused.value.status == 401 and refused.value.code == "unauthorized"
            assert refused.value.message
            # the first call fetches the run's exact state; its 401 is not retried
            assert transport.requests == [("GET", "/v1/runs/errors/export")]
        with pytest.raises(InvalidRequest, match="kk-99"):
            owner.report(0, {"kk-99": [1.0]})
        with pytest.raises(InvalidRequest, match="NaN, infinite or values beyond"):
            owner.report(0, {"kk-3": [float("nan")]})
        with pytest.raises(InvalidRequest, match=r"beyond \+-1e\+38"):
            owner.report(0, {"kk-3": [1e39]})
        assert owner.run_info()["version"] == 0
        owner.delete()


def test_report_retried_after_a_timeout_counts_once(service_url: str) -> None:
    """The service applied the report but its answer was lost: the retry is a duplicate."""
    transport = RecordingTransport(lose_report_answers=1)
    with CurriculumClient.create_or_attach(
        service_url, NAMES, run_id="lost-answer", transport=transport, backoff=0.01
    ) as client:
        result = client.report(0, {"kk-4": [1.0, -1.0, 0.5]})
        assert result.status == "duplicate" and result.version == 1
        reports_sent = [r for r in transport.requests if r[1].endswith("/reports")]
        assert len(reports_sent) == 2
        assert client.run_info()["stats"]["kk-4"]["n"] == 3
        client.delete()


def test_fallback_before_any_state_schedules_uniformly(dead_url: str) -> None:
    """With the service never reached, plans follow the given config's uniform start."""
    with CurriculumClient(
        dead_url, "offline", "t", distributions=NAMES, seed=7, retries=0
    ) as client:
        plan = client.plan(5, 32)
        uniform = np.full(len(NAMES), 0.25)
        assert plan.source == "local" and plan.version == 0
        assert plan.assignment == [NAMES[i] for i in compose_batch(uniform, 32, plan_rng(7, 5, 32))]
        assert client.report(5, {"kk-3": [1.0]}).status == "buffered"
        with pytest.raises(ServiceUnavailable):
            client.run_info()
    with (
        CurriculumClient(dead_url, "offline", "t", retries=0) as unknown,
        pytest.raises(ServiceUnavailable, match="distributions are unknown"),
    ):
        unknown.plan(0, 4)


def test_create_while_down_creates_the_run_when_the_service_answers(
    own_service: LocalService,
) -> None:
    """create_or_attach on a down service schedules locally, then creates the run and replays."""
    own_service.kill()
    with CurriculumClient.create_or_attach(
        own_service.url, NAMES, run_id="late-create", retries=0, probe_initial_s=0.0
    ) as client:
        assert client.token is None
        assert client.plan(0, 8).source == "local"
        assert client.report(0, {"kk-6": [0.5, 0.5]}).status == "buffered"
        own_service.start()
        assert client.plan(1, 8).source == "service"
        assert client.token is not None and client.buffered == 0
        assert client.run_info()["stats"]["kk-6"]["n"] == 2
        client.delete()


def test_async_client_round_trip_and_fallback(service_url: str, dead_url: str) -> None:
    """The async client gives the same answers and falls back the same way."""

    async def scenario() -> None:
        client = await AsyncCurriculumClient.create_or_attach(
            service_url, NAMES, run_id="async", strategy=STRATEGY, seed=3
        )
        async with client:
            plan = await client.plan(0, 16)
            uniform = np.full(len(NAMES), 0.25)
            assert plan.assignment == [
                NAMES[i] for i in compose_batch(uniform, 16, plan_rng(3, 0, 16))
            ]
            report = {"kk-3": [0.5, -0.5, 1.5], "kk-4": [0.0, 0.0]}
            result = await client.report(0, report, with_weights=False)
            assert result.status == "applied" and result.weights == {}
            got = await client.weights()
            np.testing.assert_allclose(
                [got[n] for n in NAMES], _expected_weights([report]), rtol=1e-6
            )
            assert (await client.run_info())["stats"]["kk-3"]["n"] == 3
            await client.delete()
        offline = AsyncCurriculumClient(dead_url, "x", "t", distributions=NAMES, retries=0)
        async with offline:
            assert (await offline.plan(0, 4)).source == "local"
            assert (await offline.report(0, {"kk-3": [1.0]})).status == "buffered"

    asyncio.run(scenario())


def test_reward_spread_signal_offline_matches_the_service_and_needs_rewards(
    service_url: str, dead_url: str
) -> None:
    """signal="reward-spread": the fallback fills its windows as the service does, and a
    report without rewards is refused before it is buffered."""
    strategy = {"name": "dump-ucb", "signal": "reward-spread"}
    report = {"kk-3": [1.0, -1.0, 0.5], "kk-4": [0.2, -0.2]}
    rewards = {"kk-3": [1.0, 0.0, 0.5], "kk-4": [0.9, 0.1]}
    with CurriculumClient.create_or_attach(
        service_url, NAMES, run_id="spread", strategy=strategy, seed=1
    ) as online:
        online.report(0, report, rewards=rewards)
        served = online.weights()
        online.delete()
    with CurriculumClient(
        dead_url, "spread", "t", distributions=NAMES, strategy=strategy, seed=1, retries=0
    ) as offline:
        with pytest.raises(InvalidRequest, match="has none for 'kk-3'"):
            offline.report(0, report)
        assert offline.buffered == 0
        result = offline.report(0, report, rewards=rewards)
        assert result.status == "buffered" and offline.buffered == 1
        np.testing.assert_allclose(
            [result.weights[n] for n in NAMES], [served[n] for n in NAMES], rtol=1e-6
        )


def test_rounds_are_planned_alike_online_and_offline(service_url: str, dead_url: str) -> None:
    """Round r of a step is the same batch from the service and from the offline fallback
    (the same state, the same stream), and differs from round 0."""
    with CurriculumClient.create_or_attach(
        service_url, NAMES, run_id="rounds", strategy=STRATEGY, seed=4
    ) as client:
        client.report(0, {"kk-3": [0.6, -0.6], "kk-4": [0.5], "kk-5": [0.4], "kk-6": [0.5]})
        online = [client.plan(1, 24, round=r) for r in range(3)]
        snapshot = client.export()
        client.delete()
    assert [p.round for p in online] == [0, 1, 2]
    assert online[1].assignment != online[0].assignment
    with CurriculumClient(dead_url, "rounds", "t", retries=0) as offline:
        offline.restore(snapshot)
        local = [offline.plan(1, 24, round=r) for r in range(3)]
    assert all(p.source == "local" for p in local)
    assert [p.assignment for p in local] == [p.assignment for p in online]
    assert [p.round for p in local] == [0, 1, 2]


def test_filtered_groups_are_reported_with_zero_advantages_and_real_rewards(
    service_url: str,
) -> None:
    """report_filtered counts every completion of the dropped groups, fills the window
    with zeros and keeps the rewards; report(filtered=) adds them after the trained ones."""
    with CurriculumClient.create_or_attach(
        service_url, NAMES, run_id="filtered", strategy=STRATEGY
    ) as client:
        result = client.report_filtered(0, {"kk-3": [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]})
        assert result.status == "applied"
        stats = client.run_info()["stats"]
        assert stats["kk-3"]["n"] == 6 and stats["kk-3"]["window_mean"] == 0.0
        assert stats["kk-3"]["reward_n"] == 6 and stats["kk-3"]["reward_mean"] == 1.0
        client.report(
            1,
            {"kk-4": [2.0, -2.0]},
            {"kk-4": [1.0, 0.0]},
            filtered={"kk-4": [[0.0, 0.0]], "kk-5": [[0.0, 0.0]]},
        )
        stats = client.run_info()["stats"]
        assert stats["kk-4"]["n"] == 4 and stats["kk-4"]["window_mean"] == 1.0  # window 4
        assert stats["kk-4"]["reward_last"] == 0.25
        assert stats["kk-5"]["n"] == 2 and stats["kk-5"]["reward_last"] == 0.0
        reference = RunModel(NAMES, STRATEGY)
        reference.apply("a", {"kk-3": [0.0] * 6}, {"kk-3": [1.0] * 6})
        reference.apply(
            "b", {"kk-4": [2.0, -2.0, 0.0, 0.0], "kk-5": [0.0, 0.0]},
            {"kk-4": [1.0, 0.0, 0.0, 0.0], "kk-5": [0.0, 0.0]},
        )  # fmt: skip
        got = client.weights()
        np.testing.assert_allclose([got[n] for n in NAMES], reference.weights(), rtol=1e-6)
        client.delete()
