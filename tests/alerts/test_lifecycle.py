"""The alert state machine, table-driven: every (state, action) pair is allowed or refused."""

from __future__ import annotations

import pytest

from alerts.lifecycle import (
    TRANSITIONS,
    Action,
    AlertState,
    DismissReason,
    TransitionRefused,
    decide,
)
from core.principal import SYSTEM, Principal
from tests.alerts.support import T0

S, A = AlertState, Action
EEB = Principal("key 1", "EEB")
DEPTS = ("EEB", "EMB")

ALLOWED = [
    (S.OPEN, A.ACKNOWLEDGE, S.ACKNOWLEDGED),
    (S.OPEN, A.DISPATCH, S.DISPATCHED),
    (S.ACKNOWLEDGED, A.DISPATCH, S.DISPATCHED),
    (S.OPEN, A.RESOLVE, S.RESOLVED),
    (S.ACKNOWLEDGED, A.RESOLVE, S.RESOLVED),
    (S.DISPATCHED, A.RESOLVE, S.RESOLVED),
    (S.RESOLVED, A.REOPEN, S.OPEN),
    (S.DISMISSED, A.REOPEN, S.OPEN),
]

REFUSED = [
    (S.ACKNOWLEDGED, A.ACKNOWLEDGE),
    (S.DISPATCHED, A.ACKNOWLEDGE),
    (S.DISPATCHED, A.DISPATCH),
    (S.RESOLVED, A.ACKNOWLEDGE),
    (S.RESOLVED, A.DISPATCH),
    (S.RESOLVED, A.RESOLVE),
    (S.RESOLVED, A.DISMISS),
    (S.DISMISSED, A.ACKNOWLEDGE),
    (S.DISMISSED, A.DISPATCH),
    (S.DISMISSED, A.RESOLVE),
    (S.DISMISSED, A.DISMISS),
    (S.OPEN, A.REOPEN),
    (S.ACKNOWLEDGED, A.REOPEN),
    (S.DISPATCHED, A.REOPEN),
]


@pytest.mark.parametrize(("state", "action", "target"), ALLOWED)
def test_allowed_transitions_record_actor_and_time(
    state: AlertState, action: Action, target: AlertState
) -> None:
    t = decide(state, DEPTS, action, EEB, T0)
    assert (t.from_state, t.to_state, t.actor, t.at) == (state, target, EEB, T0)


@pytest.mark.parametrize(("state", "action"), REFUSED)
def test_refused_transitions_say_what_is_allowed(state: AlertState, action: Action) -> None:
    with pytest.raises(TransitionRefused) as err:
        decide(state, DEPTS, action, EEB, T0, DismissReason.OTHER if action is A.DISMISS else None,
               note="n")  # fmt: skip
    assert err.value.code == "not_allowed"
    assert f"cannot {action.value} an alert that is {state.value}" in str(err.value)


def test_table_covers_every_pair() -> None:
    listed = {(s, a) for s, a, _ in ALLOWED} | set(REFUSED)
    dismiss = {(s, A.DISMISS) for s in (S.OPEN, S.ACKNOWLEDGED, S.DISPATCHED)}
    auto = {(s, A.AUTO_RESOLVE) for s in S}
    every = {(s, a) for s in S for a in A}
    assert every - listed - dismiss - auto == set()
    assert {k for k in TRANSITIONS if k[1] not in (A.DISMISS, A.AUTO_RESOLVE)} == {
        (s, a) for s, a, _ in ALLOWED
    }


@pytest.mark.parametrize("state", [S.OPEN, S.ACKNOWLEDGED, S.DISPATCHED])
@pytest.mark.parametrize("reason", list(DismissReason))
def test_dismiss_with_each_reason_code(state: AlertState, reason: DismissReason) -> None:
    t = decide(state, DEPTS, A.DISMISS, EEB, T0, reason, note="checked on site")
    assert (t.to_state, t.reason) == (S.DISMISSED, reason)


def test_dismiss_needs_a_reason_and_other_needs_a_note() -> None:
    with pytest.raises(TransitionRefused, match="dismiss needs a reason") as err:
        decide(S.OPEN, DEPTS, A.DISMISS, EEB, T0)
    assert err.value.code == "reason_required"
    with pytest.raises(TransitionRefused) as err:
        decide(S.OPEN, DEPTS, A.DISMISS, EEB, T0, DismissReason.OTHER)
    assert err.value.code == "note_required"
    with pytest.raises(TransitionRefused) as err:
        decide(S.OPEN, DEPTS, A.RESOLVE, EEB, T0, DismissReason.DUPLICATE)
    assert err.value.code == "reason_unexpected"


@pytest.mark.parametrize("action", [A.ACKNOWLEDGE, A.DISPATCH, A.RESOLVE, A.DISMISS])
def test_other_department_is_refused(action: Action) -> None:
    amr = Principal("key 9", "AMR")
    with pytest.raises(TransitionRefused, match="AMR cannot") as err:
        decide(S.OPEN, DEPTS, action, amr, T0, DismissReason.DUPLICATE)
    assert err.value.code == "other_department"


@pytest.mark.parametrize(
    ("state", "ok"),
    [(S.OPEN, True), (S.ACKNOWLEDGED, True), (S.DISPATCHED, False), (S.RESOLVED, False)],
)
def test_auto_resolve_is_the_systems_and_spares_dispatched(state: AlertState, ok: bool) -> None:
    with pytest.raises(TransitionRefused) as err:
        decide(S.OPEN, DEPTS, A.AUTO_RESOLVE, EEB, T0)
    assert err.value.code == "system_only"
    if ok:
        assert decide(state, DEPTS, A.AUTO_RESOLVE, SYSTEM, T0).to_state is S.RESOLVED
    else:
        with pytest.raises(TransitionRefused):
            decide(state, DEPTS, A.AUTO_RESOLVE, SYSTEM, T0)
