"""The subject library's refusals, each with a stable code.

The code is what machines and the workbench's catalogs key on (the page shows a Chinese
sentence per code, with `params` filled in); the message beside it is for logs and API
clients and names the field. The class says which HTTP answer the refusal is (404, 403, 409,
422), the code says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class SubjectRefusal(StrEnum):
    """Every reason the library refuses an edit, a link, a binding or a search. Adding one
    needs a catalog sentence (tests/web/test_catalogs.py fails otherwise)."""

    # subjects
    SUBJECT_NOT_FOUND = "subject_not_found"
    SUBJECT_EXISTS = "subject_exists"
    SUBJECT_ELSEWHERE = "subject_elsewhere"
    SUBJECT_SHARED = "subject_shared"
    CONCURRENT_EDIT = "concurrent_edit"
    ORDER_UNKNOWN = "order_unknown"
    # supervision periods and requests to join
    TIME_WITHOUT_OFFSET = "time_without_offset"
    SINCE_IN_PAST = "since_in_past"
    UNTIL_NOT_AFTER = "until_not_after"
    OWN_DEPARTMENT_ONLY = "own_department_only"
    DEPARTMENT_UNKNOWN = "department_unknown"
    DEPARTMENT_RETIRED = "department_retired"
    ALREADY_SUPERVISES = "already_supervises"
    ALREADY_REQUESTED = "already_requested"
    REQUEST_NOT_FOUND = "request_not_found"
    DECIDE_NEEDS_ADMIN = "decide_needs_admin"
    REQUEST_DECIDED = "request_decided"
    REQUEST_PERIOD_OVER = "request_period_over"
    END_OWN_ONLY = "end_own_only"
    NO_OPEN_PERIOD = "no_open_period"
    # device bindings
    NEW_DEVICE_PLATFORM_ONLY = "new_device_platform_only"
    DEVICE_NOT_VISIBLE = "device_not_visible"
    DEVICE_NOT_BOUND = "device_not_bound"


class SubjectError(Exception):
    """Base of the library's refusals: `code` says why, `params` are the values the
    sentence names (a department, a request id); the message is English for logs and APIs."""

    def __init__(
        self, code: SubjectRefusal, message: str, params: Mapping[str, str | int] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.params: dict[str, str | int] = dict(params or {})


class SubjectNotFoundError(SubjectError):
    """Unknown, or supervised only by other departments (the two look the same on purpose)."""


class SubjectForbiddenError(SubjectError):
    """The actor's role may not do this (e.g. bind a new device: the platform admin's job)."""


class SubjectConflictError(SubjectError):
    """The edit clashes with the current state (exists already, linked already, shared)."""


class SubjectInvalidError(SubjectError):
    """A value breaks a rule; `field` names it."""

    def __init__(
        self,
        field_name: str,
        reason: str,
        code: SubjectRefusal,
        params: Mapping[str, str | int] | None = None,
    ) -> None:
        super().__init__(code, f"{field_name}: {reason}", params)
        self.field = field_name
        self.reason = reason


def retired_reason(code: str, replaced_by: str | None) -> str:
    """Why a retired department takes no new supervision links, naming its successor."""
    then = f"; use {replaced_by}" if replaced_by else ""
    return f"{code} is retired (codes are never reused){then}"
