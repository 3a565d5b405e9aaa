"""Metrics of sign-in and live-stream authorisation."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class AuthMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.signins = Counter(
            "offsite_api_signins_total",
            "Sign-in attempts by outcome (ok, failed, throttled)",
            ["outcome"],
            registry=registry,
        )
        self.streams_revoked = Counter(
            "offsite_api_streams_revoked_total",
            "Live streams ended because their person, session or key stopped being valid",
            registry=registry,
        )
