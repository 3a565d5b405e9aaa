"""Settings of alerting, dispatch and notifications."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from rules.models import Severity
from subjects.credit import HANDLING
from subjects.models import Grade, SupervisionMethod


class NotificationRoute(BaseModel):
    """One notification channel and which alerts it carries."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        pattern=r"^[a-z][a-z0-9_-]{0,39}$",
        description="route name, used as the `channel` metric label and in the outbox",
    )
    kind: Literal["webhook", "apprise"] = Field(
        description="webhook: signed JSON POST; apprise: any Apprise URL (dingtalk://, wecom://, "
        "mailto://, json://, ...)"
    )
    url: str = Field(min_length=1, description="where notifications go")
    secret: str | None = Field(
        default=None,
        description="webhook only: HMAC-SHA256 key signing `<timestamp>.<body>`",
    )
    department: str | None = Field(
        default=None,
        description="carry alerts involving this department only; unset carries every alert",
    )
    min_severity: Severity = Field(
        default=Severity.WARNING, description="alerts below this severity are not sent here"
    )
    send_resolved: bool = Field(default=True, description="also send resolved notices")
    send_repeats: bool = Field(
        default=True, description="re-send open, unacknowledged alerts every repeat interval"
    )
    timeout_s: float = Field(default=5.0, gt=0, description="per delivery attempt")

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> NotificationRoute:
        if self.kind == "webhook" and not self.secret:
            raise ValueError(f"route {self.name!r}: a webhook route needs a `secret` to sign with")
        if self.kind == "webhook" and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"route {self.name!r}: a webhook url must start with http(s)://")
        return self


def _default_sla() -> dict[Severity, float]:
    return {
        Severity.CRITICAL: 4.0,
        Severity.MAJOR: 24.0,
        Severity.WARNING: 72.0,
        Severity.INFO: 168.0,
    }


def _default_draw_ratios() -> dict[Grade, float]:
    # Both credit schemes, from the scheme data (subjects/credit_handling.yaml).
    return {grade: h.draw_ratio for grade, h in HANDLING.items()}


class CreditHandling(BaseModel):
    """What a credit grade changes in handling an alert (never a limit; docs/rules.md)."""

    model_config = ConfigDict(extra="forbid")

    method: SupervisionMethod = Field(
        description="default dispatch (监管方式): remote supervision, or an on-site inspection "
        "(a joint one at any severity for a subject several departments supervise)"
    )
    inspect_every_days: float | None = Field(
        default=None,
        gt=0,
        description="inspection frequency floor (检查频次): a subject with no inspection task "
        "for this long is drawn at the next sampled draw; unset: the random draw alone",
    )
    escalate_after_s: float | None = Field(
        default=None,
        gt=0,
        description="an alert not acknowledged this long after it opened is escalated to "
        "`escalate_to`; unset: never",
    )
    escalate_to: list[str] = Field(
        default_factory=list,
        description="department codes an escalation goes to: they join the alert and their "
        "routes are notified",
    )
    notify_hold_s: float = Field(
        default=0.0,
        ge=0,
        description="notices of a low-severity alert wait this long before delivery; those of "
        "one alert and route within the hold are batched into the latest",
    )

    @model_validator(mode="after")
    def _escalation_needs_both(self) -> CreditHandling:
        if (self.escalate_after_s is None) != (not self.escalate_to):
            raise ValueError("escalate_after_s and escalate_to are set together or not at all")
        return self


def _default_credit_handling() -> dict[Grade, CreditHandling]:
    return {
        grade: CreditHandling(
            method=h.method,
            inspect_every_days=h.inspect_every_days,
            escalate_after_s=h.escalate_after_s,
            escalate_to=list(h.escalate_to),
            notify_hold_s=h.notify_hold_s,
        )
        for grade, h in HANDLING.items()
    }


def _default_lead() -> dict[str, str]:
    return {
        "hazardous_chemicals": "EMB",
        "mining": "EMB",
        "fire": "EMB",
        "safety": "EMB",
        "wastewater": "EEB",
        "air": "EEB",
        "pollution": "EEB",
        "environment": "EEB",
        "food": "AMR",
        "special_equipment": "AMR",
        "market": "AMR",
        "medical_waste": "HLT",
        "construction": "HUD",
        "dust": "HUD",
        "livestock": "AGR",
        "road_freight": "TRN",
    }


class AlertsSettings(BaseModel):
    """Alert grouping, dispatch policy and notification channels."""

    model_config = ConfigDict(extra="forbid")

    audit_signing_key: SecretStr | None = Field(
        default=None,
        description="Ed25519 private key (base64 of its 32-byte seed, `offsite audit keygen`)"
        " that signs audit checkpoints; set it in the environment, never in a file others read",
    )
    queue_max: int = Field(
        default=10_000,
        ge=1,
        description="clue events waiting for the alerts worker; when full, the rules engine "
        "blocks (back-pressure, never loss: clues are already committed)",
    )
    tick_interval_s: float = Field(
        default=1.0, gt=0, description="how often auto-resolve, repeats and metrics are checked"
    )
    quiet_period_s: float = Field(
        default=300.0,
        ge=0,
        description="an open or acknowledged alert auto-resolves once all its clues are resolved "
        "and this long has passed without a new firing clue",
    )
    reopen_window_s: float = Field(
        default=3600.0,
        ge=0,
        description="a firing clue within this long after an alert was resolved reopens it "
        "instead of opening a new one (dismissed alerts never reopen by themselves)",
    )
    joint_min_severity: Severity = Field(
        default=Severity.MAJOR,
        description="a subject in the cross-department library gets a joint inspection from "
        "this severity up, even when its clues come from one department",
    )
    lead_by_domain: dict[str, str] = Field(
        default_factory=_default_lead,
        description="domain (subject industry, then tags, in order) -> lead department of a "
        "joint inspection, used when that department takes part (docs/alerts.md)",
    )
    sla_hours: dict[Severity, float] = Field(
        default_factory=_default_sla,
        description="hours from dispatch to a task's due time, by the alert's severity",
    )
    draw_ratios: dict[Grade, float] = Field(
        default_factory=_default_draw_ratios,
        description="double-random draws: share of a department's subjects drawn per credit "
        "grade (worse grade, higher share)",
    )
    credit_handling: dict[Grade, CreditHandling] = Field(
        default_factory=_default_credit_handling,
        description="per credit grade of each scheme: default dispatch method, inspection "
        "frequency floor, escalation of unacknowledged alerts and notification hold "
        "(defaults: subjects/credit_handling.yaml)",
    )
    notify_hold_max_severity: Severity = Field(
        default=Severity.WARNING,
        description="a grade's notification hold applies to alerts up to this severity; "
        "graver alerts are notified at once for every grade",
    )
    draw_due_days: float = Field(
        default=30.0, gt=0, description="days from a draw merge to its joint tasks' due time"
    )
    routes: list[NotificationRoute] = Field(
        default_factory=list, description="notification channels and what each carries"
    )
    repeat_interval_s: float = Field(
        default=4 * 3600.0,
        ge=0,
        description="re-notify an open, unacknowledged alert after this long; 0 never repeats",
    )
    rate_cap_count: int = Field(
        default=10,
        ge=1,
        description="at most this many notifications per subject and route per rate window; "
        "more are kept in the outbox as suppressed",
    )
    rate_cap_window_s: float = Field(default=3600.0, gt=0, description="the rate cap's window")
    max_attempts: int = Field(
        default=8, ge=1, description="delivery attempts before a notification is marked dead"
    )
    backoff_initial_s: float = Field(
        default=2.0, gt=0, description="delay before the first retry; doubles each attempt"
    )
    backoff_max_s: float = Field(default=600.0, gt=0, description="retry delay cap")
    outbox_poll_s: float = Field(
        default=1.0, gt=0, description="how often the outbox is scanned when nothing wakes it"
    )
    evidence_hold_days: float = Field(
        default=365.0,
        gt=0,
        description="evidence of an alert's clues is kept while the alert is open and this "
        "many days after it closed (video retention asks before deleting)",
    )
    retention_days: float = Field(
        default=30.0,
        gt=0,
        description="live-stream events and delivered or suppressed notifications older than "
        "this are deleted (dead notifications stay until handled); a stream cannot resume "
        "from before it",
    )
    stream_poll_s: float = Field(
        default=0.5,
        gt=0,
        description="how often a live stream checks for events written by other instances",
    )

    @field_validator("credit_handling", mode="before")
    @classmethod
    def _over_the_defaults(cls, value: Any) -> Any:
        # A settings file names the grades it changes; the others keep the scheme data's.
        if not isinstance(value, dict):
            return value
        merged: dict[Any, Any] = {g.value: h for g, h in _default_credit_handling().items()}
        for grade, handling in value.items():
            merged[getattr(grade, "value", grade)] = handling
        return merged

    @model_validator(mode="after")
    def _check(self) -> AlertsSettings:
        names = [r.name for r in self.routes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"routes: names must be unique, repeated: {', '.join(dupes)}")
        missing = [s.value for s in Severity if s not in self.sla_hours]
        if missing:
            raise ValueError(f"sla_hours: every severity needs hours, missing {missing}")
        for grade, ratio in self.draw_ratios.items():
            if not 0 <= ratio <= 1:
                raise ValueError(f"draw_ratios.{grade.value}: {ratio} is not between 0 and 1")
        return self
