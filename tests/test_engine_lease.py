"""The engine lease on a real PostgreSQL: one holder, takeover when its session ends, and a
fence that stops the stale holder's writes."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool

from failover.lease import FencedError, Lease
from failover.metrics import EngineMetrics
from failover.role import EXIT_LEASE_LOST, EngineRole
from failover.settings import EngineSettings
from ingest.models import Reading
from tests.helpers import scalar, wait_until

SETTINGS = EngineSettings(lock_key=0x0E791E1)


def _backend_of(db: psycopg.Connection[Any], holder: str) -> int:
    sql = "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
    return scalar(db, sql, f"offsite-engine-lease {holder}")


def test_one_holder_then_takeover_when_its_session_ends(
    db_url: str, db: psycopg.Connection[Any]
) -> None:
    a, b = Lease(db_url, SETTINGS, "a"), Lease(db_url, SETTINGS, "b")
    try:
        epoch_a = a.try_acquire()
        assert epoch_a == 1
        assert b.try_acquire() is None  # held: the standby waits
        assert a.confirm()
        # The holder's session dies (a killed process, a lost host found by keepalives).
        db.execute("SELECT pg_terminate_backend(%s)", (_backend_of(db, "a"),))
        with pytest.raises(psycopg.Error):
            a.confirm()
        assert not a.session_open
        assert b.try_acquire() == 2
        assert db.execute("SELECT epoch, holder FROM engine_lease").fetchone() == (2, "b")
        # The stale holder's writes are refused inside their own transaction.
        with psycopg.connect(db_url) as conn, pytest.raises(FencedError), conn.transaction():
            a.fence(conn)
        with psycopg.connect(db_url) as conn, conn.transaction():
            b.fence(conn)
    finally:
        a.close()
        b.close()


def test_a_stale_write_in_progress_commits_before_the_new_epoch(
    db_url: str, db: psycopg.Connection[Any]
) -> None:
    """The winner's bump waits for a write that passed the fence, so it is never lost to
    the rebuild that follows the takeover."""
    a, b = Lease(db_url, SETTINGS, "a"), Lease(db_url, SETTINGS, "b")
    try:
        assert a.try_acquire() == 1
        stale = psycopg.connect(db_url)
        stale.execute("BEGIN")
        a.fence(stale)  # passes: epoch 1 still holds, and is held FOR SHARE now
        db.execute("SELECT pg_terminate_backend(%s)", (_backend_of(db, "a"),))
        got: list[int | None] = []
        t = threading.Thread(target=lambda: got.append(b.try_acquire()))
        t.start()
        # b's bump waits for the write in progress: its session waits on a lock.
        wait_until(lambda: scalar(db, "SELECT count(*) FROM pg_stat_activity WHERE"
                                      " application_name = %s AND wait_event_type = 'Lock'",
                                  "offsite-engine-lease b"), what="b's bump waiting")  # fmt: skip
        assert t.is_alive()
        stale.execute("COMMIT")
        t.join(5)
        assert got == [2]
        stale.close()
        a.close()  # what the election loop does after the error of a dead session
        assert a.try_acquire() is None  # the old holder, back, is a standby now
    finally:
        a.close()
        b.close()


def test_a_fenced_engine_exits_before_writing(db_url: str, db: psycopg.Connection[Any]) -> None:
    """The rules' commit guard of an engine whose epoch is over: the process ends (exit 75)
    and the transaction writes nothing, not even its progress marks."""
    exits: list[int] = []
    with ConnectionPool(db_url, min_size=1, max_size=2) as pool:
        role = EngineRole(
            SETTINGS, db_url, pool, EngineMetrics(CollectorRegistry()), exit_process=exits.append
        )
        assert role.lease.try_acquire() == 1
        reading = Reading(datetime.now(UTC), "gd-0001", "lel", 3.0)
        with psycopg.connect(db_url) as conn, conn.transaction():
            role.in_commit(conn, [reading])  # holds: the mark is written
        assert db.execute("SELECT count(*) FROM engine_progress").fetchone() == (1,)
        db.execute("SELECT pg_terminate_backend(%s)", (_backend_of(db, role.holder),))
        other = Lease(db_url, SETTINGS, "other")
        try:
            assert other.try_acquire() == 2
            later = Reading(datetime.now(UTC), "gd-0002", "lel", 3.0)
            with (
                psycopg.connect(db_url) as conn,
                pytest.raises(FencedError),
                conn.transaction(),
            ):
                role.in_commit(conn, [later])
            assert exits == [EXIT_LEASE_LOST]
            assert db.execute("SELECT count(*) FROM engine_progress").fetchone() == (1,)
        finally:
            other.close()
            role.lease.close()
