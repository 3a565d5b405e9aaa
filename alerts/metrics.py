"""Prometheus collectors of the alerts package."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from alerts.lifecycle import AlertState
from alerts.records import TaskKind, TaskStatus
from rules.models import Severity

ACK_BUCKETS = (10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400, 259200)
DELIVERY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class AlertsMetrics:
    """Alert, task and notification counters; labels are states, kinds and route names."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.alerts = Gauge(
            "offsite_alerts_alerts",
            "Alerts by state and severity (refreshed every tick from the database)",
            ["state", "severity"],
            registry=registry,
        )
        self.tasks = Gauge(
            "offsite_alerts_tasks",
            "Tasks by kind and status (refreshed every tick from the database)",
            ["kind", "status"],
            registry=registry,
        )
        self.time_to_ack = Histogram(
            "offsite_alerts_time_to_acknowledge_seconds",
            "From an alert opening to its acknowledgement",
            buckets=ACK_BUCKETS,
            registry=registry,
        )
        self.clue_events = Counter(
            "offsite_alerts_clue_events_total",
            "Clue transitions applied to alerts, by result (applied, failed, duplicate)",
            ["result"],
            registry=registry,
        )
        self.queue_depth = Gauge(
            "offsite_alerts_queue_depth", "Clue events waiting for the worker", registry=registry
        )
        self.clue_retries = Gauge(
            "offsite_alerts_clue_retries",
            "Clues whose latest change failed to apply and waits for a retry",
            registry=registry,
        )
        self.notifications = Counter(
            "offsite_alerts_notifications_total",
            "Delivery attempts by channel (route) and result (sent, failed, dead)",
            ["channel", "result"],
            registry=registry,
        )
        self.delivery_seconds = Histogram(
            "offsite_alerts_notification_delay_seconds",
            "From a notification's commit to its successful delivery",
            ["channel"],
            buckets=DELIVERY_BUCKETS,
            registry=registry,
        )
        self.outbox_depth = Gauge(
            "offsite_alerts_outbox_depth",
            "Notifications waiting for delivery, by status (pending, dead)",
            ["status"],
            registry=registry,
        )
        self.outbox_age = Gauge(
            "offsite_alerts_outbox_oldest_age_seconds",
            "Age of the oldest pending notification (0 when none)",
            registry=registry,
        )
        for state in AlertState:
            for severity in Severity:
                self.alerts.labels(state.value, severity.value)
        for kind in TaskKind:
            for status in TaskStatus:
                self.tasks.labels(kind.value, status.value)
