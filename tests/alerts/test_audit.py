"""The audit chain: append-only in the database, linear under concurrency, tampering found."""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from alerts import audit, silences
from alerts.cli import verify_command
from alerts.lifecycle import Action
from alerts.records import TaskStatus
from alerts.silences import Matcher
from alerts.store import AlertStore
from core.principal import Principal
from subjects.models import ChangeKind, SubjectChanged
from tests.alerts.support import CHEM, Clock, clue
from tests.helpers import in_threads

EEB, EMB = Principal("key 1", "EEB"), Principal("key 2", "EMB")


def history(store: AlertStore, db: psycopg.Connection[Any], clock: Clock) -> None:
    """A little of everything: clues, an alert's life, a joint task, a silence, a subject edit."""
    store.apply_clue(db, clue(CHEM, "EEB"))
    out = store.apply_clue(db, clue(CHEM, "EMB", rule_id="r-lel"))
    assert out.alert is not None
    store.transition(db, out.alert.id, Action.ACKNOWLEDGE, EEB)
    task = store.dispatch(db, out.alert.id, EEB).task
    assert task is not None
    store.update_task(db, task.id, TaskStatus.DONE, EMB, "no leak found")
    silences.create(db, EEB, Matcher.RULE, "r-cod", clock.now,
                    clock.now.replace(hour=23), "sensor swap", clock())  # fmt: skip
    change = SubjectChanged(
        kind=ChangeKind.UPDATED,
        credit_code=CHEM,
        actor="key:5",
        department="EEB",
        at=clock.now,
        before={"grid": "G-01", "credit_grade": "C"},
        after={"grid": "G-01", "credit_grade": "D"},
    )
    with db.transaction():
        store.record_subject_change(db, change)


def test_every_kind_of_change_is_recorded_and_verifies(
    db: psycopg.Connection[Any], store: AlertStore, clock: Clock
) -> None:
    history(store, db, clock)
    entities = {r[0] for r in db.execute("SELECT DISTINCT entity FROM audit_log")}
    assert entities == {"clue", "alert", "task", "silence", "subject"}
    actions = [r[0] for r in db.execute("SELECT action FROM audit_log ORDER BY seq")]
    assert "alert.acknowledge" in actions
    assert "task.done" in actions
    assert actions[-1] == "subject.updated"
    result = audit.verify(db)
    assert result.ok
    assert result.checked == len(actions)
    row = db.execute("SELECT actor, payload FROM audit_log WHERE entity = 'subject'").fetchone()
    assert row is not None
    assert row[0] == "key:5"
    assert '"credit_grade":"D"' in row[1]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET actor = 'mallory' WHERE seq = 1",
        "DELETE FROM audit_log WHERE seq = 1",
        "TRUNCATE audit_log",
    ],
)
def test_database_refuses_changes(
    db: psycopg.Connection[Any], store: AlertStore, statement: str
) -> None:
    store.apply_clue(db, clue(CHEM))
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        db.execute(statement)


def tamper(db: psycopg.Connection[Any], sql: str, *params: Any) -> None:
    """Edit the log behind the triggers' back, as a superuser could."""
    with db.transaction():
        db.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
        db.execute(sql, params)
        db.execute("ALTER TABLE audit_log ENABLE TRIGGER USER")


def test_edited_row_is_found_at_its_seq(
    db: psycopg.Connection[Any], store: AlertStore, clock: Clock
) -> None:
    history(store, db, clock)
    total = db.execute("SELECT max(seq) FROM audit_log").fetchone()
    assert total is not None
    assert total[0] > 8
    tamper(db, "UPDATE audit_log SET payload = replace(payload, 'EMB', 'AMR') WHERE seq = 5")
    out = io.StringIO()
    assert verify_command(db, out) == 1
    assert out.getvalue().startswith("audit chain BROKEN at seq 5: seq 5: contents do not match")
    assert "(4 rows before it verified)" in out.getvalue()


def test_rehashed_edit_is_found_at_the_next_link(
    db: psycopg.Connection[Any], store: AlertStore, clock: Clock
) -> None:
    history(store, db, clock)
    row = db.execute(
        "SELECT seq, at, actor, entity, entity_id, action, payload, prev_hash FROM audit_log"
        " WHERE seq = 3"
    ).fetchone()
    assert row is not None
    seq, at, actor, entity, entity_id, action, _payload, prev = row
    forged = '{"forged":true}'
    new_hash = audit.row_hash(seq, at, actor, entity, entity_id, action, forged, prev)
    tamper(db, "UPDATE audit_log SET payload = %s, hash = %s WHERE seq = 3", forged, new_hash)
    result = audit.verify(db)
    assert (result.ok, result.broken_seq, result.checked) == (False, 4, 3)
    assert "prev_hash does not match the hash of seq 3" in result.reason


def test_deleted_row_is_a_missing_seq(
    db: psycopg.Connection[Any], store: AlertStore, clock: Clock
) -> None:
    history(store, db, clock)
    tamper(db, "DELETE FROM audit_log WHERE seq = 2")
    result = audit.verify(db)
    assert (result.ok, result.broken_seq) == (False, 2)
    assert "seq 2 is missing" in result.reason


def test_intact_chain_verifies_through_a_pool_too(db_url: str, db: psycopg.Connection[Any],
                                                  store: AlertStore) -> None:  # fmt: skip
    from psycopg_pool import ConnectionPool

    store.apply_clue(db, clue(CHEM))
    out = io.StringIO()
    with ConnectionPool(db_url, min_size=1, max_size=1) as pool:
        assert verify_command(pool, out) == 0
    assert out.getvalue().startswith("audit chain ok: ")


def test_concurrent_appends_stay_one_line(db_url: str) -> None:
    writers, each = 6, 25
    barrier = threading.Barrier(writers)

    def write(n: int) -> None:
        with psycopg.connect(db_url, autocommit=True) as conn:
            barrier.wait()
            for i in range(each):
                with conn.transaction():
                    audit.append(conn, [audit.AuditRecord(f"w{n}", "test", str(i), "x",
                                                          {"i": i})],
                                 datetime.now(UTC))  # fmt: skip

    assert in_threads(write, writers) == []
    with psycopg.connect(db_url) as conn:
        result = audit.verify(conn)
    assert (result.ok, result.checked) == (True, writers * each)


def test_append_outside_a_transaction_is_refused(db: psycopg.Connection[Any]) -> None:
    with pytest.raises(RuntimeError, match="inside a transaction"):
        audit.append(db, [audit.AuditRecord("a", "e", "1", "x")], datetime.now(UTC))


def test_canonical_json_is_stable() -> None:
    a = audit.canonical_json({"b": 1, "a": [datetime(2026, 1, 1, 8, tzinfo=UTC)], "c": "线索"})
    assert a == '{"a":["2026-01-01T08:00:00.000000Z"],"b":1,"c":"线索"}'
