"""Prometheus metrics of the HJ 212 gateway."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Hj212Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.connections = Gauge(
            "offsite_hj212_connections", "Open logger connections", registry=registry
        )
        self.accepted = Counter(
            "offsite_hj212_connections_accepted_total",
            "Logger connections accepted",
            registry=registry,
        )
        self.refused = Counter(
            "offsite_hj212_connections_refused_total",
            "Connections closed on accept because hj212.max_connections was reached",
            registry=registry,
        )
        self.packets = Counter(
            "offsite_hj212_packets_total",
            "Frames received, by result and protocol version",
            ["result", "version"],
            registry=registry,
        )
        self.length_mismatch = Counter(
            "offsite_hj212_length_mismatch_total",
            "Packets whose length field was wrong but whose CRC was right (accepted)",
            registry=registry,
        )
        self.replies = Counter(
            "offsite_hj212_replies_total", "Replies (CN 9014) sent after commit", registry=registry
        )
        self.reply_seconds = Histogram(
            "offsite_hj212_reply_seconds",
            "From a packet's arrival to its reply, sent after the commit",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
