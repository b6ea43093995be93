"""Prometheus metrics, in a registry of our own so tests and several apps never collide."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from processing import REASONS

CONTENT_TYPE = CONTENT_TYPE_LATEST
DURATION_BUCKETS_S = (1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 3600)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(namespace="clinic_events", registry=self.registry)
        PlatformCollector(registry=self.registry)
        ns, registry = "clinic_events", self.registry
        self.uploads = Counter(
            "uploads",
            "Web upload requests by outcome",
            ["outcome"],
            namespace=ns,
            registry=registry,
        )
        self.jobs = Counter(
            "jobs",
            "Finished jobs by source kind and status",
            ["source", "status"],
            namespace=ns,
            registry=registry,
        )
        self.jobs_active = Gauge("jobs_active", "Jobs running now", namespace=ns, registry=registry)
        self.rows = Counter("rows_processed", "CSV rows analysed", namespace=ns, registry=registry)
        self.invalid_rows = Counter(
            "invalid_rows", "Invalid rows by reason", ["reason"], namespace=ns, registry=registry
        )
        self.bytes_read = Counter(
            "bytes_read", "CSV bytes analysed", namespace=ns, registry=registry
        )
        self.job_duration = Histogram(
            "job_duration_seconds",
            "Job wall time, queue excluded",
            buckets=DURATION_BUCKETS_S,
            namespace=ns,
            registry=registry,
        )
        self.slack_api_errors = Counter(
            "slack_api_errors",
            "Slack Web API calls that failed, by method",
            ["method"],
            namespace=ns,
            registry=registry,
        )
        for reason in REASONS:
            self.invalid_rows.labels(reason)
        # Scale-out: the queue, and what each worker did.
        self.queue_messages = Gauge(
            "queue_messages",
            "Job queue messages: visible (waiting) and in flight (being worked on)",
            ["state"],
            namespace=ns,
            registry=registry,
        )
        self.worker_jobs = Counter(
            "worker_jobs",
            "Jobs a worker ended, by worker and status",
            ["worker", "status"],
            namespace=ns,
            registry=registry,
        )
        self.lease_renewals = Counter(
            "lease_renewals",
            "Job leases renewed by a running worker",
            namespace=ns,
            registry=registry,
        )
        self.takeovers = Counter(
            "takeovers",
            "Jobs taken over from a worker whose lease lapsed (it died or stalled)",
            namespace=ns,
            registry=registry,
        )
        self.duplicates = Counter(
            "duplicate_messages",
            "Queue messages dropped because their job had already ended",
            namespace=ns,
            registry=registry,
        )

        self.store_records_skipped = Counter(
            "store_records_skipped",
            "Job records the store could not read, left out of lists and recovery",
            namespace=ns,
            registry=registry,
        )

        self.store_errors = Counter(
            "store_errors",
            "Job store calls that failed (an outage, a disk error), by operation",
            ["operation"],
            namespace=ns,
            registry=registry,
        )
        self.sweeper_actions = Counter(
            "sweeper_actions",
            "What the sweeper did with stranded jobs and dead letters",
            ["action"],
            namespace=ns,
            registry=registry,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
