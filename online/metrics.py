"""Prometheus metrics of the shim, in a registry per app (tests build many apps).

Under gunicorn (``PROMETHEUS_MULTIPROC_DIR`` set by ``online/gunicorn.conf.py``) every worker
writes its samples to that folder and ``/metrics`` aggregates all workers.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


class ShimMetrics:
    def __init__(self, queue_depth=None):
        self.registry = CollectorRegistry()
        self.requests = Counter("lore_requests", "Relevance requests by tier and HTTP status.",
                                ["tier", "status"], registry=self.registry)
        self.latency = Histogram("lore_request_latency_seconds", "Request latency by tier and source.",
                                 ["tier", "source"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.cache_lookups = Counter("lore_cache_lookups", "Head-cache item lookups by result (hit|miss).",
                                     ["result"], registry=self.registry)
        self.fallbacks = Counter("lore_fallbacks", "Requests answered by the student instead (reason).",
                                 ["reason"], registry=self.registry)
        self.queue_depth = _QueueDepth(queue_depth) if queue_depth is not None else None
        if self.queue_depth:
            self.registry.register(self.queue_depth)

    def exposition(self) -> bytes:
        """The text format: this process's registry, or all gunicorn workers' samples."""
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        if self.queue_depth:
            registry.register(self.queue_depth)
        return generate_latest(registry)


class _QueueDepth:
    """``lore_tail_queue_depth``: length of the write-back stream, read at scrape time."""

    def __init__(self, depth):
        self.depth = depth

    def collect(self):
        gauge = GaugeMetricFamily("lore_tail_queue_depth", "Entries in the tail write-back stream.")
        value = self.depth()
        if value is not None:
            gauge.add_metric([], value)
        yield gauge
