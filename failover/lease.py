"""The engine lease: a session-level advisory lock on a dedicated connection, and a fencing
epoch in `engine_lease` that every write of the active engine checks.

PostgreSQL releases a session lock the moment the session ends: a killed engine's kernel
closes its socket and the server ends the session at once; a host that vanishes is found by
the server's TCP keepalives (set on this session, `server_keepalive_s`). The epoch covers
the gap in between: the winner bumps it, and a write that checks it `FOR SHARE` either
commits before the bump or sees the new epoch and refuses.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import psycopg

from failover.settings import EngineSettings

log = logging.getLogger(__name__)


class FencedError(Exception):
    """Another engine took the lease: this one must not write any more."""


def _dedicated(conninfo: str, settings: EngineSettings, holder: str) -> psycopg.Connection[Any]:
    """A connection of its own for the lock, with keepalives on both ends and timeouts, so
    a lost network ends the session (and frees the lock) in seconds, not hours."""
    k = settings.server_keepalive_s
    info = psycopg.conninfo.conninfo_to_dict(conninfo)
    server = (
        f"-c tcp_keepalives_idle={k} -c tcp_keepalives_interval={k} -c tcp_keepalives_count=3"
        f" -c tcp_user_timeout={k * 3000} -c statement_timeout={int(settings.check_s * 3000)}"
        " -c idle_session_timeout=0 -c idle_in_transaction_session_timeout=0"
    )
    info["options"] = f"{info.get('options', '')} {server}".strip()
    info.update(
        keepalives=1,
        keepalives_idle=k,
        keepalives_interval=k,
        keepalives_count=3,
        tcp_user_timeout=k * 3000,
        application_name=f"offsite-engine-lease {holder}"[:63],
    )
    info["connect_timeout"] = max(1, int(settings.lease_timeout_s))
    return psycopg.connect(psycopg.conninfo.make_conninfo("", **info), autocommit=True)


class Lease:
    """One engine's side of the election: try the lock, confirm it, fence writes."""

    def __init__(self, conninfo: str, settings: EngineSettings, holder: str) -> None:
        self.conninfo = conninfo
        self.settings = settings
        self.holder = holder
        self.epoch: int | None = None
        self._conn: psycopg.Connection[Any] | None = None

    def try_acquire(self) -> int | None:
        """Take the lock if it is free; then bump and return the epoch (else None).

        Raises psycopg errors (the database is unreachable): the caller retries."""
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = _dedicated(self.conninfo, self.settings, self.holder)
        conn = self._conn
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.settings.lock_key,)).fetchone()
        if row is None or not row[0]:
            return None
        # Waits for writes of a stale engine still holding the row FOR SHARE: they commit
        # first, and the rebuild that follows sees them.
        bumped = conn.execute(
            "UPDATE engine_lease SET epoch = epoch + 1, holder = %s, acquired_at = now()"
            " WHERE id = 1 RETURNING epoch",
            (self.holder,),
        ).fetchone()
        if bumped is None:
            raise RuntimeError("engine_lease has no row: run `offsite migrate`")
        self.epoch = int(bumped[0])
        return self.epoch

    def confirm(self) -> bool:
        """True while this session still holds the lock and the epoch is ours. Raises
        psycopg errors when the session is gone (then the lock is gone with it)."""
        if self._conn is None or self.epoch is None:
            return False
        key = self.settings.lock_key
        row = self._conn.execute(
            "SELECT (SELECT epoch FROM engine_lease WHERE id = 1), EXISTS (SELECT 1 FROM pg_locks"
            " WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted"
            " AND classid = %s AND objid = %s AND objsubid = 1)",
            (key >> 32, key & 0xFFFFFFFF),
        ).fetchone()
        return row is not None and row[0] == self.epoch and bool(row[1])

    @property
    def session_open(self) -> bool:
        """False once the lock's session is closed or broken (the lock went with it)."""
        return self._conn is not None and not self._conn.closed and not self._conn.broken

    def fence(self, conn: psycopg.Connection[Any]) -> None:
        """Inside a writing transaction on another connection: raise FencedError unless our epoch
        is still the current one (and keep it so until that transaction ends)."""
        row = conn.execute("SELECT epoch FROM engine_lease WHERE id = 1 FOR SHARE").fetchone()
        current = None if row is None else int(row[0])
        if self.epoch is None or current != self.epoch:
            raise FencedError(f"engine epoch {self.epoch} is over: epoch {current} holds the lease")

    def close(self) -> None:
        """Release the lock (closing the session releases it too)."""
        if self._conn is not None and not self._conn.closed:
            with contextlib.suppress(psycopg.Error):
                self._conn.execute("SELECT pg_advisory_unlock_all()")
            self._conn.close()
        self._conn = None
