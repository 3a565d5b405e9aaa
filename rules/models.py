"""Typed messages that leave the rules package: clue changes handed to alerts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class Severity(StrEnum):
    """How bad a clue is; `rank` orders them."""

    INFO = "info"
    WARNING = "warning"
    MAJOR = "major"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.MAJOR: 2, Severity.CRITICAL: 3}


class ClueStatus(StrEnum):
    """A clue's state; only firing and resolved clues are handed to alerts."""

    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class ClueEvent:
    """A committed clue transition (opened, updated or resolved), handed to the alerts side."""

    clue_id: int
    fingerprint: str
    rule_id: str
    rule_version: int
    title: str
    department: str
    severity: Severity
    status: ClueStatus
    credit_code: str | None
    device_ids: tuple[str, ...]
    started_at: datetime
    ended_at: datetime | None
    changed_at: datetime
    summary: str
    evidence_ids: tuple[str, ...] = ()


class ClueSink(Protocol):
    """Receives committed clue transitions; must not block the engine for long."""

    def clue_changed(self, event: ClueEvent) -> None: ...
