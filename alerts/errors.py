"""Refusals the API turns into 404 and 422 answers."""

from __future__ import annotations


class NotFoundError(LookupError):
    """No such alert, task or silence for this caller (another department's ids look the same)."""


class DrawError(ValueError):
    """A submitted draw names subjects the department does not supervise."""
