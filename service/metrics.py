"""Prometheus metrics of one service process, on a registry of its own (one per app)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass
class Metrics:
    """The counters and histograms the service updates."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "curriculum_requests_total",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "curriculum_request_seconds",
            "HTTP request latency by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.reports = Counter(
            "curriculum_reports_total",
            "Reports received, by outcome (applied or duplicate).",
            ["status"],
            registry=self.registry,
        )
        self.plans = Counter(
            "curriculum_plans_total",
            "Plans served, by source (drawn now, or kept from an earlier request).",
            ["source"],
            registry=self.registry,
        )
        self.store_errors = Counter(
            "curriculum_store_unavailable_total",
            "Requests answered 503 because Redis could not be reached.",
            registry=self.registry,
        )

    def render(self) -> bytes:
        """The metrics in Prometheus text format."""
        return generate_latest(self.registry)
