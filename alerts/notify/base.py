"""What every notification channel implements, and what it is handed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from alerts.notify.payload import NoticePayload


@dataclass(frozen=True, slots=True)
class Notification:
    """One outbox row to deliver: `payload` is the JSON document the webhook sends as is;
    `notice` reads it as a NoticePayload."""

    outbox_id: int
    route: str
    event: str
    payload: dict[str, Any]
    created_at: datetime

    @property
    def notice(self) -> NoticePayload:
        return NoticePayload.model_validate(self.payload)

    @property
    def title(self) -> str:
        alert = self.notice.alert
        return f"[{alert.severity.upper()}] alert {alert.id} {self.event}: {alert.subject_key}"

    @property
    def body(self) -> str:
        notice = self.notice
        alert = notice.alert
        lines = [
            f"subject {alert.subject_key} (grid {alert.grid or '-'})",
            f"state {alert.state}, departments {', '.join(alert.departments)}",
        ]
        lines += [f"- {c.title} [{c.status}]" for c in notice.clues[:10]]
        return "\n".join(lines)


class NotifyError(Exception):
    """A delivery attempt failed; the outbox retries it with backoff."""


class Notifier(Protocol):
    """A channel: sends one notification or raises NotifyError."""

    name: str

    def send(self, notification: Notification) -> None: ...
