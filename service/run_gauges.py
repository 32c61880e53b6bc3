"""Per-run gauges for ``/metrics`` (setting ``run_metrics``, off by default): one series per
run and distribution, so their number grows with the runs kept.

Read from Redis when ``/metrics`` is scraped, so every replica shows the same values, and
whatever a run's last report went through, it is shown: the weights stored with the run,
its counts, window means and reward averages, and when its last report was applied.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from service.errors import RunConflict, RunNotFound, StaleRun, StoreUnavailable
from service.store.redis_store import RedisStore

PAGE = 500

_PER_DISTRIBUTION = {
    "weight": "Sampling probability of the distribution (the stored weights).",
    "window_mean": "Mean absolute advantage over the distribution's window.",
    "samples": "Samples reported for the distribution, in all (since creation or import).",
    "reward_mean": "Moving average of the distribution's reported batch mean rewards.",
}


class _Families(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        yield from self._families


class RunGauges:
    """Renders the per-run gauges of every run, read from the store at each call."""

    def __init__(self, store: RedisStore) -> None:
        self._store = store

    async def render(self) -> bytes:
        """The gauges in Prometheus text format. ``curriculum_run_gauges_up`` is 0 when Redis
        could not be read (and no run gauge is given)."""
        per_dist = {
            name: GaugeMetricFamily(f"curriculum_run_{name}", text, labels=["run", "distribution"])
            for name, text in _PER_DISTRIBUTION.items()
        }
        version = GaugeMetricFamily(
            "curriculum_run_version", "Reports and imports applied to the run.", labels=["run"]
        )
        reported = GaugeMetricFamily(
            "curriculum_run_last_report_timestamp_seconds",
            "When the run's last report was applied (Unix seconds).",
            labels=["run"],
        )
        up = GaugeMetricFamily(
            "curriculum_run_gauges_up", "1 if the per-run gauges could be read from Redis."
        )
        try:
            await self._fill(per_dist, version, reported)
            up.add_metric([], 1.0)
        except StoreUnavailable:
            per_dist = {}
            version.samples.clear()
            reported.samples.clear()
            up.add_metric([], 0.0)
        registry = CollectorRegistry()
        registry.register(_Families([*per_dist.values(), version, reported, up]))
        return generate_latest(registry)

    async def _fill(
        self,
        per_dist: dict[str, GaugeMetricFamily],
        version: GaugeMetricFamily,
        reported: GaugeMetricFamily,
    ) -> None:
        cursor: str | None = None
        while True:
            page = await self._store.list_runs(cursor, PAGE)
            for run_id in page.run_ids:
                try:
                    meta = await self._store.load_meta(run_id)
                    state = await self._store.read_state(run_id, meta.incarnation, activity=True)
                except (RunNotFound, StaleRun, RunConflict):
                    continue  # deleted or recreated while being read, or of another layout
                names = json.loads(meta.config_json)["distributions"]
                inputs = state.inputs
                values = {
                    "weight": state.weights,
                    "window_mean": inputs.window_mean,
                    "samples": inputs.n,
                    "reward_mean": inputs.rewards[:, 1],
                }
                for metric, array in values.items():
                    for name, value in zip(names, array.tolist(), strict=True):
                        per_dist[metric].add_metric([run_id, name], value)
                version.add_metric([run_id], float(inputs.version))
                if state.reporters:
                    reported.add_metric([run_id], max(r.at for r in state.reporters))
            cursor = page.next_cursor
            if cursor is None:
                return
