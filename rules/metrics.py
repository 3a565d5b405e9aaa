"""Prometheus collectors of the rule engine."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.02,
    0.035,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.25,
    0.35,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
)


class RulesMetrics:
    """Collectors for evaluations, clue transitions, lag and late data."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.evaluations = Counter(
            "offsite_rules_evaluations_total",
            "Rule evaluations (one input applied to one rule stream)",
            registry=registry,
        )
        self.clues_opened = Counter(
            "offsite_rules_clues_opened_total",
            "Clues opened, committed",
            ["rule", "department"],
            registry=registry,
        )
        self.clues_resolved = Counter(
            "offsite_rules_clues_resolved_total",
            "Clues resolved (or withdrawn after late data), committed",
            ["rule", "department"],
            registry=registry,
        )
        self.evaluation_lag = Histogram(
            "offsite_rules_evaluation_lag_seconds",
            "Wall clock minus the newest event time of a batch when the engine evaluates it",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.clue_latency = Histogram(
            "offsite_rules_clue_latency_seconds",
            "From the event time of the reading that opened a clue to the clue's commit "
            "(publish to clue, for devices that publish as they measure)",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.late_dropped = Counter(
            "offsite_rules_late_readings_dropped_total",
            "Readings later than the allowed lateness: stored, but not evaluated",
            ["rule"],
            registry=registry,
        )
        self.queue_depth = Gauge(
            "offsite_rules_queue_depth_batches", "Batches waiting for the engine", registry=registry
        )
        self.queue_capacity = Gauge(
            "offsite_rules_queue_capacity_batches", "Size of the engine's queue", registry=registry
        )
        self.rules_loaded = Gauge(
            "offsite_rules_loaded_rules", "Rules in the active set", registry=registry
        )
        self.reload_failures = Counter(
            "offsite_rules_reload_failures_total",
            "Reloads refused: the new rule set was invalid or its state could not be rebuilt"
            " (the old set stays)",
            registry=registry,
        )
        self.rule_errors = Counter(
            "offsite_rules_rule_errors_total",
            "Inputs a rule raised on (skipped for that rule's stream only)",
            ["rule"],
            registry=registry,
        )
        self.rule_up = Gauge(
            "offsite_rules_rule_up",
            "0 while a rule has raised within the last five minutes, else 1",
            ["rule"],
            registry=registry,
        )
        self.store_errors = Counter(
            "offsite_rules_store_errors_total",
            "Failed attempts to commit clue transitions (retried)",
            registry=registry,
        )
        self.sink_errors = Counter(
            "offsite_rules_sink_errors_total",
            "Exceptions raised by clue sinks (the clue is committed regardless)",
            registry=registry,
        )
