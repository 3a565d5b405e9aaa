"""The subject library's refusals; each message is meant for the caller."""

from __future__ import annotations


class SubjectError(Exception):
    """Base of the library's refusals; the message is meant for the caller."""


class SubjectNotFoundError(SubjectError):
    """Unknown, or supervised only by other departments (the two look the same on purpose)."""


class SubjectForbiddenError(SubjectError):
    """The actor's role may not do this (e.g. bind a new device: the platform admin's job)."""


class SubjectConflictError(SubjectError):
    """The edit clashes with the current state (exists already, linked already, shared)."""


class SubjectInvalidError(SubjectError):
    """A value breaks a rule; `field` names it."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field = field_name
        self.reason = reason


def retired_reason(code: str, replaced_by: str | None) -> str:
    """Why a retired department takes no new supervision links, naming its successor."""
    then = f"; use {replaced_by}" if replaced_by else ""
    return f"{code} is retired (codes are never reused){then}"
