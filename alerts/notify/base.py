"""What every notification channel implements, and what it is handed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Notification:
    """One outbox row to deliver: `payload` is the JSON document the channel sends."""

    outbox_id: int
    route: str
    event: str
    payload: dict[str, Any]
    created_at: datetime

    @property
    def title(self) -> str:
        alert = self.payload.get("alert", {})
        return (
            f"[{str(alert.get('severity', '')).upper()}] alert {alert.get('id')} "
            f"{self.event}: {alert.get('subject_key', '')}"
        )

    @property
    def body(self) -> str:
        alert = self.payload.get("alert", {})
        clues = self.payload.get("clues", [])
        lines = [
            f"subject {alert.get('subject_key')} (grid {alert.get('grid') or '-'})",
            f"state {alert.get('state')}, departments {', '.join(alert.get('departments', []))}",
        ]
        lines += [f"- {c.get('title')} [{c.get('status')}]" for c in clues[:10]]
        return "\n".join(lines)


class NotifyError(Exception):
    """A delivery attempt failed; the outbox retries it with backoff."""


class Notifier(Protocol):
    """A channel: sends one notification or raises NotifyError."""

    name: str

    def send(self, notification: Notification) -> None: ...
