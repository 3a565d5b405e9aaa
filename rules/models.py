"""Typed messages that leave the rules package: clue changes handed to alerts."""

from __future__ import annotations

from collections.abc import Sequence
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
    # The clue's change number in the ledger (0: not from the ledger, e.g. a test's event).
    seq: int = 0


class ClueSink(Protocol):
    """Receives committed clue transitions; must not block the engine for long."""

    def clue_changed(self, event: ClueEvent) -> None: ...


class ClueLedger(Protocol):
    """The committed clue changes, read back in commit order: the durable side of the hand-off
    (a sink's queue is only a wake-up; a consumer keeps its own watermark)."""

    def clue_changes_after(self, seq: int, limit: int) -> Sequence[ClueEvent]: ...

    def clue(self, clue_id: int) -> ClueEvent | None: ...
