"""Prometheus collectors of the ingest package."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Publish-to-commit latency is the number operators watch; buckets resolve p99 near 250 ms.
LAG_BUCKETS = (
    0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5,
    0.75, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0,
)  # fmt: skip


class IngestMetrics:
    """Every ingest counter; labels stay low-cardinality (never a device id)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Counter(
            "offsite_ingest_messages_total",
            "MQTT messages handled, by result (stored, partial, rejected, status, frame)",
            ["result"],
            registry=registry,
        )
        self.readings_written = Counter(
            "offsite_ingest_readings_written_total",
            "Readings committed to the readings table (redelivered duplicates not counted)",
            registry=registry,
        )
        self.duplicates = Counter(
            "offsite_ingest_duplicates_total",
            "Readings already stored with the same value (redelivery), skipped",
            registry=registry,
        )
        self.conflicts = Counter(
            "offsite_ingest_conflicts_total",
            "Readings whose key was stored with a different value; the first value is kept",
            registry=registry,
        )
        self.dead_letters = Counter(
            "offsite_ingest_dead_letters_total",
            "Dead letters written, by reason",
            ["reason"],
            registry=registry,
        )
        self.batch_rows = Histogram(
            "offsite_ingest_batch_rows",
            "Readings per committed batch",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 20000),
            registry=registry,
        )
        self.commit_seconds = Histogram(
            "offsite_ingest_commit_seconds",
            "Time to write and commit one batch",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.lag = Histogram(
            "offsite_ingest_lag_seconds",
            "Commit time minus device time, per message (its first reading)",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.queue_depth = Gauge(
            "offsite_ingest_queue_depth",
            "Messages waiting between the MQTT thread and the writer",
            registry=registry,
        )
        self.queue_capacity = Gauge(
            "offsite_ingest_queue_capacity",
            "Size of the queue between the MQTT thread and the writer",
            registry=registry,
        )
        self.write_errors = Counter(
            "offsite_ingest_write_errors_total",
            "Batches that failed to commit and were retried (database errors)",
            registry=registry,
        )
        self.sink_errors = Counter(
            "offsite_ingest_sink_errors_total",
            "Hand-offs of committed readings or statuses that a sink (rules, video) raised on",
            registry=registry,
        )
        self.mqtt_connected = Gauge(
            "offsite_mqtt_connected", "1 while connected to the broker", registry=registry
        )
        self.mqtt_session_lost = Counter(
            "offsite_mqtt_session_lost",
            "reconnects that found no persistent session: what the broker held for offsite"
            " is gone (expired, broker state lost, or the client id taken over)",
            registry=registry,
        )
        self.mqtt_session_taken_over = Counter(
            "offsite_mqtt_session_taken_over",
            "disconnects because another client connected with offsite's client id",
            registry=registry,
        )
        self.retained_ignored = Counter(
            "offsite_ingest_retained_telemetry_ignored",
            "retained telemetry replayed by the broker on subscribe, acknowledged and not"
            " stored (its live copy was stored when it was published)",
            registry=registry,
        )
        self.db_up = Gauge(
            "offsite_db_up", "1 while the last database operation succeeded", registry=registry
        )
        self.partitions_created = Counter(
            "offsite_storage_partitions_created_total",
            "Native partitions created by maintenance",
            registry=registry,
        )


class WorkerMetrics:
    """The parent's own counters about its ingest child processes (ingest.workers)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.restarts = Counter(
            "offsite_ingest_worker_restarts_total",
            "ingest child processes found dead and started again",
            registry=registry,
        )
        self.alive = Gauge(
            "offsite_ingest_workers_alive", "ingest child processes running", registry=registry
        )
        self.configured = Gauge(
            "offsite_ingest_workers", "ingest child processes configured", registry=registry
        )
