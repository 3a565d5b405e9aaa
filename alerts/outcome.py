"""What an alerts transaction did, for the caller's metrics and wake-ups (after the commit)."""

from __future__ import annotations

import dataclasses

from alerts.records import AlertRow, Changes, TaskRow


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    alert: AlertRow | None
    pending_notifications: int
    changes: Changes
    task: TaskRow | None = None
