"""The alert state machine: a transition table, checked with no I/O and no clock."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from alerts.errors import Refusal
from core.principal import Principal


class AlertState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    DISPATCHED = "dispatched"
    RESOLVED = "resolved"
    DISMISSED = "dismissed"

    @property
    def is_open(self) -> bool:
        return self in OPEN_STATES


OPEN_STATES = frozenset({AlertState.OPEN, AlertState.ACKNOWLEDGED, AlertState.DISPATCHED})


class Action(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    DISPATCH = "dispatch"
    RESOLVE = "resolve"
    DISMISS = "dismiss"
    REOPEN = "reopen"
    AUTO_RESOLVE = "auto_resolve"


class DismissReason(StrEnum):
    FALSE_POSITIVE = "false_positive"
    DEVICE_FAULT = "device_fault"
    PERMITTED_ACTIVITY = "permitted_activity"
    DUPLICATE = "duplicate"
    OTHER = "other"


S, A = AlertState, Action

# Every allowed (state, action) and where it leads; anything else is refused. A dispatched
# alert does not auto-resolve: its inspection is under way and closes it (or an officer does).
TRANSITIONS: dict[tuple[AlertState, Action], AlertState] = {
    (S.OPEN, A.ACKNOWLEDGE): S.ACKNOWLEDGED,
    (S.OPEN, A.DISPATCH): S.DISPATCHED,
    (S.ACKNOWLEDGED, A.DISPATCH): S.DISPATCHED,
    (S.OPEN, A.RESOLVE): S.RESOLVED,
    (S.ACKNOWLEDGED, A.RESOLVE): S.RESOLVED,
    (S.DISPATCHED, A.RESOLVE): S.RESOLVED,
    (S.OPEN, A.DISMISS): S.DISMISSED,
    (S.ACKNOWLEDGED, A.DISMISS): S.DISMISSED,
    (S.DISPATCHED, A.DISMISS): S.DISMISSED,
    (S.OPEN, A.AUTO_RESOLVE): S.RESOLVED,
    (S.ACKNOWLEDGED, A.AUTO_RESOLVE): S.RESOLVED,
    (S.RESOLVED, A.REOPEN): S.OPEN,
    (S.DISMISSED, A.REOPEN): S.OPEN,
}

# Actions only the system takes (its own clock and clue events), never a caller.
SYSTEM_ONLY = frozenset({Action.AUTO_RESOLVE})


class TransitionRefused(Exception):  # noqa: N818 - reads as the outcome, like PermissionError
    """A transition is not allowed; `code` is machine-readable, the message says why."""

    def __init__(self, code: Refusal, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Transition:
    """An allowed transition, with who made it and when."""

    action: Action
    from_state: AlertState
    to_state: AlertState
    actor: Principal
    at: datetime
    reason: DismissReason | None = None
    note: str = ""


def decide(
    state: AlertState,
    departments: Collection[str],
    action: Action,
    actor: Principal,
    at: datetime,
    reason: DismissReason | None = None,
    note: str = "",
) -> Transition:
    """The transition `action` makes from `state`, or TransitionRefused saying why not."""
    if not actor.is_system and actor.department not in departments:
        raise TransitionRefused(
            Refusal.OTHER_DEPARTMENT,
            f"{actor.name} of {actor.department} cannot {action.value} this alert: it concerns "
            f"{', '.join(sorted(departments))}",
        )
    if action in SYSTEM_ONLY and not actor.is_system:
        raise TransitionRefused(Refusal.SYSTEM_ONLY, f"{action.value} is done by the system only")
    target = TRANSITIONS.get((state, action))
    if target is None:
        allowed = sorted(a.value for (s, a) in TRANSITIONS if s == state and a not in SYSTEM_ONLY)
        raise TransitionRefused(
            Refusal.NOT_ALLOWED,
            f"cannot {action.value} an alert that is {state.value}; allowed: "
            f"{', '.join(allowed) or 'nothing'}",
        )
    if action is Action.DISMISS and reason is None:
        codes = ", ".join(r.value for r in DismissReason)
        raise TransitionRefused(Refusal.REASON_REQUIRED, f"dismiss needs a reason: one of {codes}")
    if action is not Action.DISMISS and reason is not None:
        raise TransitionRefused(Refusal.REASON_UNEXPECTED, "only dismiss takes a reason code")
    if reason is DismissReason.OTHER and not note.strip():
        raise TransitionRefused(Refusal.NOTE_REQUIRED, "dismissing for reason 'other' needs a note")
    return Transition(action, state, target, actor, at, reason, note)
