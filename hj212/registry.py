"""Which loggers (MN) may send and with which password (PW): the hj212_loggers table."""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from hj212.decoder import Auth
from ingest import devices

log = logging.getLogger(__name__)


def password_hash(mn: str, pw: str) -> str:
    return hashlib.sha256(f"{mn}:{pw}".encode()).hexdigest()


def register(conn: psycopg.Connection[Any], mn: str, password: str, by: str) -> None:
    """Register `mn` or change its password; the device is listed with kind `hj212`."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO hj212_loggers (mn, password_sha256, registered_by) VALUES (%s, %s, %s)"
            " ON CONFLICT (mn) DO UPDATE SET password_sha256 = excluded.password_sha256,"
            " registered_by = excluded.registered_by, registered_at = now()",
            (mn, password_hash(mn, password), by),
        )
        devices.register(conn, mn, "hj212")


class LoggerRegistry:
    """Checks MN and PW against the table, caching what it read (thread-safe).

    With `require_registration` off an unknown MN registers itself with the password of
    its first packet (trust on first use); an operator changes it with the CLI.
    """

    def __init__(self, pool: ConnectionPool, require_registration: bool) -> None:
        self.pool = pool
        self.require_registration = require_registration
        self._known: dict[str, str] = {}
        # (hash, PW) last found to match: a logger's every packet need not hash its PW
        # again. It counts only while that hash is still `_known[mn]` (re-read after a
        # change), so no lock is needed between the loop and a thread asking the database.
        self._verified: dict[str, tuple[str, bytes]] = {}

    def cached(self, mn: str, pw: str | None) -> Auth | None:
        """OK from the cache, or None when the database must be asked (also for a wrong
        password: it may have been changed with the CLI since it was cached)."""
        want = self._known.get(mn)
        if want is None or pw is None:
            return None
        seen = self._verified.get(mn)
        if seen is not None and seen[0] is want and hmac.compare_digest(seen[1], pw.encode()):
            return Auth.OK
        if hmac.compare_digest(password_hash(mn, pw), want):
            self._verified[mn] = (want, pw.encode())
            return Auth.OK
        return None

    def check(self, mn: str, pw: str | None) -> Auth:
        """The answer, asking the database (and registering) when the cache has none."""
        hit = self.cached(mn, pw)
        if hit is not None:
            return hit
        # No lock: the table's key settles two first packets of one MN, and the pool is
        # thread-safe, so a thousand loggers' first contact proceeds in parallel.
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT password_sha256 FROM hj212_loggers WHERE mn = %s", (mn,)
            ).fetchone()
            if row is None:
                if self.require_registration or pw is None:
                    return Auth.UNKNOWN
                conn.execute(
                    "INSERT INTO hj212_loggers (mn, password_sha256, registered_by)"
                    " VALUES (%s, %s, 'first packet') ON CONFLICT (mn) DO NOTHING",
                    (mn, password_hash(mn, pw)),
                )
                devices.register(conn, mn, "hj212")
                conn.commit()
                row = conn.execute(
                    "SELECT password_sha256 FROM hj212_loggers WHERE mn = %s", (mn,)
                ).fetchone()
                assert row is not None
                log.info("HJ 212 logger %s registered itself on its first packet", mn)
            self._known[mn] = row[0]
        return self._compare(mn, pw, row[0])

    def forget(self) -> None:
        """Passwords may have changed (CLI): read them again on the next packet."""
        self._known.clear()
        self._verified.clear()

    @staticmethod
    def _compare(mn: str, pw: str | None, want: str) -> Auth:
        if pw is None:
            return Auth.WRONG_PASSWORD
        ok = hmac.compare_digest(password_hash(mn, pw), want)
        return Auth.OK if ok else Auth.WRONG_PASSWORD
