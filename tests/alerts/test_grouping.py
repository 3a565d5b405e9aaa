"""Clues join their subject's one open alert: severity, departments, timeline, concurrency."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest

from alerts.errors import NotFoundError
from alerts.lifecycle import Action, AlertState, DismissReason, TransitionRefused
from alerts.settings import AlertsSettings
from alerts.store import AlertStore
from core.principal import Principal
from rules.models import ClueStatus, Severity
from tests.alerts.support import CHEM, PLANT, Clock, clue, subjects
from tests.helpers import in_threads

EEB = Principal("key 1", "EEB")


def alerts_of(conn: psycopg.Connection[Any], key: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT id, state, severity, departments FROM alerts WHERE subject_key = %s ORDER BY id",
        (key,),
    ).fetchall()


def test_clues_on_one_subject_form_one_alert(
    db: psycopg.Connection[Any], store: AlertStore
) -> None:
    store.apply_clue(db, clue(CHEM, "EEB", Severity.WARNING))
    store.apply_clue(db, clue(CHEM, "EMB", Severity.CRITICAL, rule_id="r-lel"))
    store.apply_clue(db, clue(CHEM, "EEB", Severity.MAJOR, rule_id="r-nh3"))
    store.apply_clue(db, clue(PLANT, "EEB", Severity.INFO))
    (alert,) = alerts_of(db, CHEM)
    assert alert[1:] == ("open", "critical", ["EEB", "EMB"])
    timeline = db.execute(
        "SELECT kind FROM alert_timeline WHERE alert_id = %s ORDER BY id", (alert[0],)
    )
    kinds = [r[0] for r in timeline]
    assert kinds == ["opened", "clue_added", "clue_added", "escalated", "clue_added"]
    assert db.execute("SELECT grid FROM alerts WHERE id = %s", (alert[0],)).fetchone() == ("G-01",)
    assert len(alerts_of(db, PLANT)) == 1


def test_repeated_event_of_one_clue_updates_it(
    db: psycopg.Connection[Any], store: AlertStore
) -> None:
    store.apply_clue(db, clue(CHEM, clue_id=7, severity=Severity.WARNING))
    store.apply_clue(db, clue(CHEM, clue_id=7, severity=Severity.MAJOR))
    assert db.execute("SELECT count(*) FROM alert_clues").fetchone() == (1,)
    assert alerts_of(db, CHEM)[0][2] == "major"


def test_clue_without_subject_groups_by_device(
    db: psycopg.Connection[Any], store: AlertStore
) -> None:
    store.apply_clue(db, clue(None, device="loose-1"))
    store.apply_clue(db, clue(None, device="loose-1", rule_id="r2"))
    assert len(alerts_of(db, "device:loose-1")) == 1


def _race(db_url: str, clock: Clock, key: str) -> None:
    """Two stores on two connections apply a clue of one subject at the same instant."""
    stores = [AlertStore(AlertsSettings(), subjects(), clock) for _ in range(2)]
    conns = [psycopg.connect(db_url, autocommit=True) for _ in range(2)]
    barrier = threading.Barrier(2)

    def run(i: int) -> None:
        barrier.wait()
        stores[i].apply_clue(conns[i], clue(key, ("EEB", "EMB")[i], rule_id=f"r{i}"))

    errors = in_threads(run, 2)
    for c in conns:
        c.close()
    assert errors == []


def test_two_clues_at_once_open_one_alert(db_url: str, clock: Clock) -> None:
    rounds = 12
    for n in range(rounds):
        _race(db_url, clock, f"91320500MA1MXXX{n:03d}")
    with psycopg.connect(db_url) as conn:
        counts = conn.execute(
            "SELECT subject_key, count(*), min(cardinality(departments)) FROM alerts"
            " GROUP BY subject_key"
        ).fetchall()
        assert len(counts) == rounds
        assert all(n == 1 and d == 2 for _k, n, d in counts)
        assert conn.execute("SELECT count(*) FROM alert_clues").fetchone() == (2 * rounds,)


def test_partial_unique_index_refuses_a_second_open_alert(db: psycopg.Connection[Any]) -> None:
    insert = (
        "INSERT INTO alerts (subject_key, state, severity, departments, opened_at, updated_at)"
        " VALUES ('k', %s, 'info', '{EEB}', now(), now())"
    )
    db.execute(insert, ("open",))
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute(insert, ("acknowledged",))


def test_auto_resolve_after_quiet_period_then_reopen(
    db: psycopg.Connection[Any], store: AlertStore, clock: Clock
) -> None:
    store.apply_clue(db, clue(CHEM, clue_id=1))
    store.apply_clue(db, clue(CHEM, clue_id=2, rule_id="r2"))
    store.apply_clue(db, clue(CHEM, clue_id=1, status=ClueStatus.RESOLVED))
    clock.advance(400)
    assert store.auto_resolve_due(db) == []  # clue 2 still fires
    store.apply_clue(db, clue(CHEM, clue_id=2, rule_id="r2", status=ClueStatus.RESOLVED))
    clock.advance(299)
    assert store.auto_resolve_due(db) == []  # quiet period is 300 s
    clock.advance(2)
    (outcome,) = store.auto_resolve_due(db)
    assert outcome.alert is not None
    assert outcome.alert.state is AlertState.RESOLVED
    assert outcome.alert.closed_by == "system"
    # A firing clue within the reopen window reopens the same alert.
    clock.advance(60)
    store.apply_clue(db, clue(CHEM, clue_id=3, rule_id="r3"))
    (alert,) = alerts_of(db, CHEM)
    assert alert[1] == "open"
    row = db.execute("SELECT reopen_count, closed_at FROM alerts").fetchone()
    assert row == (1, None)


def test_dismissed_alert_is_not_reopened_by_a_new_clue(
    db: psycopg.Connection[Any], store: AlertStore
) -> None:
    out = store.apply_clue(db, clue(CHEM))
    assert out.alert is not None
    store.transition(db, out.alert.id, Action.DISMISS, EEB, DismissReason.DEVICE_FAULT)
    store.apply_clue(db, clue(CHEM, rule_id="r9"))
    assert [a[1] for a in alerts_of(db, CHEM)] == ["dismissed", "open"]
    # Reopening the dismissed one by hand now collides with the open alert.
    with pytest.raises(TransitionRefused) as err:
        store.transition(db, out.alert.id, Action.REOPEN, EEB)
    assert err.value.code == "already_open"


def test_transitions_record_who_and_when_and_refuse_other_departments(
    db: psycopg.Connection[Any], store: AlertStore, clock: Clock
) -> None:
    out = store.apply_clue(db, clue(PLANT))
    assert out.alert is not None
    clock.advance(90)
    ack = store.transition(db, out.alert.id, Action.ACKNOWLEDGE, EEB)
    assert ack.changes.acknowledged_after_s == [90.0]
    with pytest.raises(NotFoundError):
        store.transition(db, out.alert.id, Action.RESOLVE, Principal("key 2", "EMB"))
    with pytest.raises(TransitionRefused, match="cannot acknowledge an alert that is acknowledged"):
        store.transition(db, out.alert.id, Action.ACKNOWLEDGE, EEB)
    acked_at = clock.now
    clock.advance(30)
    store.transition(db, out.alert.id, Action.RESOLVE, EEB, note="fixed")
    row = db.execute(
        "SELECT state, acknowledged_by, acknowledged_at, closed_by, closed_at, close_note"
        " FROM alerts WHERE id = %s",
        (out.alert.id,),
    ).fetchone()
    assert row is not None
    assert row[0] == "resolved"
    assert row[1] == "key 1"
    assert row[3] == "key 1"
    assert row[5] == "fixed"
    assert (row[2], row[4]) == (acked_at, clock.now)
    timeline = db.execute(
        "SELECT kind, actor, detail->>'from', detail->>'to' FROM alert_timeline"
        " WHERE alert_id = %s AND actor <> 'rules' ORDER BY id",
        (out.alert.id,),
    ).fetchall()
    assert timeline == [
        ("acknowledge", "key 1", "open", "acknowledged"),
        ("resolve", "key 1", "acknowledged", "resolved"),
    ]
