"""Refusals the API turns into 404, 409 and 422 answers, each with a stable code.

The code is what machines and the workbench's catalogs key on (the page shows a Chinese
sentence per code); the message beside it is for logs and API clients and names the field.
"""

from __future__ import annotations

from enum import StrEnum


class Refusal(StrEnum):
    """Every reason the alerts package refuses a command. Adding one needs a catalog label
    (a test fails otherwise)."""

    # alert and task transitions
    OTHER_DEPARTMENT = "other_department"
    SYSTEM_ONLY = "system_only"
    NOT_ALLOWED = "not_allowed"
    REASON_REQUIRED = "reason_required"
    REASON_UNEXPECTED = "reason_unexpected"
    NOTE_REQUIRED = "note_required"
    ALREADY_OPEN = "already_open"
    LEAD_ONLY = "lead_only"
    FINDINGS_REQUIRED = "findings_required"
    # findings
    TASK_DONE = "task_done"
    FINDING_EMPTY = "finding_empty"
    TOO_MANY_PHOTOS = "too_many_photos"
    PHOTO_TOO_LARGE = "photo_too_large"
    PHOTO_TYPE = "photo_type"
    # silences
    SILENCE_NO_DEPARTMENT = "silence_no_department"
    SILENCE_NAIVE_TIME = "silence_naive_time"
    SILENCE_END_BEFORE_START = "silence_end_before_start"
    SILENCE_TOO_LONG = "silence_too_long"
    SILENCE_REASON_REQUIRED = "silence_reason_required"
    SILENCE_VALUE_REQUIRED = "silence_value_required"
    SILENCE_EXPIRED = "silence_expired"
    SILENCE_END_IN_PAST = "silence_end_in_past"
    SILENCE_END_NOT_LATER = "silence_end_not_later"
    # double-random draws
    DRAW_NO_DEPARTMENT = "draw_no_department"
    DRAW_NOT_SUPERVISED = "draw_not_supervised"
    DRAW_NO_DRAW_IN_PERIOD = "draw_no_draw_in_period"
    DRAW_EMPTY_SCOPE = "draw_empty_scope"
    DRAW_SCOPE_CHANGED = "draw_scope_changed"


class NotFoundError(LookupError):
    """No such alert, task or silence for this caller (another department's ids look the same)."""


class CodedError(ValueError):
    """A request that breaks a rule: `code` says which, the message names the field."""

    def __init__(self, code: Refusal, message: str) -> None:
        super().__init__(message)
        self.code = code


class DrawError(CodedError):
    """A draw request the department may not make (subjects it does not supervise, a merge
    of a period it did not draw in)."""
