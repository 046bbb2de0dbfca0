"""The server's Prometheus metrics: one registry per application, read across workers when there are several."""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from .settings import METRICS_VARIABLE

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    """Requests by route and status, their latency, errors by code, and reloads of the model or store."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("recommender_requests", "HTTP requests", ["route", "status"], registry=self.registry)
        self.latency = Histogram(
            "recommender_request_seconds",
            "Time to answer a request",
            ["route"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.errors = Counter("recommender_errors", "Requests answered with an error", ["code"], registry=self.registry)
        self.reloads = Counter("recommender_reloads", "Model or store reloads", registry=self.registry)
        self.shared = os.environ.get(METRICS_VARIABLE)  # several workers: each writes its values there

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format: every worker's when they share a folder, else this one's."""
        if self.shared:
            every_worker = CollectorRegistry()
            MultiProcessCollector(every_worker, path=self.shared)
            return bytes(generate_latest(every_worker))
        return bytes(generate_latest(self.registry))
