"""The document a notification carries: built by alerts.routing, stored in the outbox, sent
as is by the webhook and read field by field for the title and body of the other channels."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NoticeAlert(_Frozen):
    """AlertRow.summary(): the alert as events, notices and the audit chain show it."""

    id: int
    subject_key: str
    credit_code: str | None
    state: str
    severity: str
    departments: list[str]
    grid: str
    opened_at: datetime
    updated_at: datetime
    dismiss_reason: str | None
    reopen_count: int


class NoticeClue(_Frozen):
    rule_id: str
    title: str
    status: str
    department: str
    device_ids: list[str]
    started_at: datetime


class NoticePayload(_Frozen):
    event: str
    at: datetime
    alert: NoticeAlert
    clues: list[NoticeClue]
