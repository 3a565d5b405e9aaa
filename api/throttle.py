"""Failed sign-ins, counted per login and per address, so guessing passwords is slow."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg


def record_failure(conn: psycopg.Connection[Any], login: str, ip: str) -> None:
    conn.execute("INSERT INTO login_failures (login, ip) VALUES (%s, %s)", (login, ip))


def retry_after(
    conn: psycopg.Connection[Any], login: str, ip: str, limit: int, window: timedelta
) -> int | None:
    """Seconds until a sign-in may be tried again, or None when it may be tried now."""
    row = conn.execute(
        """SELECT max(wait) FROM (
               SELECT CASE WHEN count(*) >= %(limit)s THEN
                   extract(epoch FROM (%(window)s - (now() - (array_agg(at ORDER BY at DESC))
                       [%(limit)s]))) END AS wait
               FROM login_failures WHERE login = %(login)s AND at > now() - %(window)s
               UNION ALL
               SELECT CASE WHEN count(*) >= %(limit)s THEN
                   extract(epoch FROM (%(window)s - (now() - (array_agg(at ORDER BY at DESC))
                       [%(limit)s]))) END
               FROM login_failures WHERE ip = %(ip)s AND at > now() - %(window)s) w""",
        {"login": login, "ip": ip, "limit": limit, "window": window},
    ).fetchone()
    if row is None or row[0] is None:
        return None
    return max(1, int(float(row[0])) + 1)


def forget(conn: psycopg.Connection[Any], login: str, window: timedelta) -> None:
    """After a good sign-in the login's count starts again; old rows are pruned."""
    conn.execute(
        "DELETE FROM login_failures WHERE login = %s OR at < now() - %s", (login, window * 2)
    )
