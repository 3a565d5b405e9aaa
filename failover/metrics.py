"""Prometheus metrics of the engine election and the engine's subscription."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class EngineMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.active = Gauge(
            "offsite_engine_active",
            "1 while this process is the active engine, 0 while it is a standby",
            registry=registry,
        )
        self.takeovers = Counter(
            "offsite_engine_takeovers_total",
            "times this process won the engine lease and became active",
            registry=registry,
        )
        self.epoch = Gauge(
            "offsite_engine_lease_epoch",
            "the fencing epoch this process holds (0 while standby)",
            registry=registry,
        )
        self.takeover_seconds = Gauge(
            "offsite_engine_takeover_seconds",
            "the last takeover: from winning the lock to evaluating (state rebuilt, subscribed)",
            registry=registry,
        )
        self.connected = Gauge(
            "offsite_engine_mqtt_connected",
            "1 while the engine's own subscription is connected to the broker",
            registry=registry,
        )
        self.messages = Counter(
            "offsite_engine_messages_total",
            "messages the engine's subscription received, by result",
            ["result"],
            registry=registry,
        )
        self.gap_stored = Counter(
            "offsite_engine_gap_readings_stored_total",
            "readings the engine's gap repair found not stored yet and stored, in its windows"
            " around a reconnect (ingest may have been about to; what a broker restart kept"
            " from ingest is among them)",
            registry=registry,
        )
        self.redelivered_skipped = Counter(
            "offsite_engine_redelivered_readings_skipped_total",
            "readings of redelivered messages that were already evaluated (not evaluated again)",
            registry=registry,
        )
