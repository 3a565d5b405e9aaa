"""The durable clue hand-off: the watermark of applied clue changes and the retry list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

# A change that failed for a reason other than the database is retried this often, at most.
RETRY_MIN_S = 5.0
RETRY_MAX_S = 600.0


@dataclass(frozen=True, slots=True)
class Retry:
    """A clue whose latest change failed to apply; retried by the sweep."""

    clue_id: int
    attempts: int
    error: str


def watermark(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT seq FROM alert_clue_watermark").fetchone()
    return int(row[0]) if row is not None else 0


def claim(conn: psycopg.Connection[Any], seq: int) -> bool:
    """Inside the applying transaction: move the watermark to `seq`; False if it was there
    already (the change was applied before a crash or by another worker)."""
    row = conn.execute(
        "UPDATE alert_clue_watermark SET seq = %s WHERE seq < %s RETURNING 1", (seq, seq)
    ).fetchone()
    return row is not None


def settled(conn: psycopg.Connection[Any], clue_id: int) -> None:
    """Inside the applying transaction: the clue's latest state is applied, no retry left."""
    conn.execute("DELETE FROM alert_clue_retries WHERE clue_id = %s", (clue_id,))


def skip(conn: psycopg.Connection[Any], seq: int, clue_id: int, error: str, now: datetime) -> None:
    """Give up on a change for now: the watermark passes it and the clue goes on the retry
    list, with a backoff that doubles per attempt."""
    with conn.transaction():
        conn.execute("UPDATE alert_clue_watermark SET seq = GREATEST(seq, %s)", (seq,))
        _fail(conn, clue_id, error, now)


def failed_again(conn: psycopg.Connection[Any], clue_id: int, error: str, now: datetime) -> None:
    with conn.transaction():
        _fail(conn, clue_id, error, now)


def _fail(conn: psycopg.Connection[Any], clue_id: int, error: str, now: datetime) -> None:
    row = conn.execute(
        "SELECT attempts FROM alert_clue_retries WHERE clue_id = %s FOR UPDATE", (clue_id,)
    ).fetchone()
    attempts = (int(row[0]) if row is not None else 0) + 1
    wait = min(RETRY_MIN_S * 2 ** (attempts - 1), RETRY_MAX_S)
    conn.execute(
        "INSERT INTO alert_clue_retries (clue_id, attempts, error, next_at)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (clue_id) DO UPDATE"
        " SET attempts = excluded.attempts, error = excluded.error, next_at = excluded.next_at",
        (clue_id, attempts, error[:2000], now + timedelta(seconds=wait)),
    )


def due_retries(conn: psycopg.Connection[Any], now: datetime, limit: int = 50) -> list[Retry]:
    rows = conn.execute(
        "SELECT clue_id, attempts, error FROM alert_clue_retries WHERE next_at <= %s"
        " ORDER BY next_at LIMIT %s",
        (now, limit),
    ).fetchall()
    return [Retry(int(c), int(a), str(e)) for c, a, e in rows]


def retry_count(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM alert_clue_retries").fetchone()
    return int(row[0]) if row is not None else 0
