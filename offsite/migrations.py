"""Schema migrations: each package's `migrations/NNNN_*.sql`, applied once, in package order."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg

from offsite.db import DbCapabilities, TimescaleConnectionLostError, enable_timescaledb
from offsite.settings import Settings
from subjects.departments import seed_departments

log = logging.getLogger(__name__)

# Order matters: later packages reference tables of earlier ones.
PACKAGES = ("api", "ingest", "hj212", "subjects", "rules", "alerts", "video", "failover")
# Two instances starting at once serialise on this lock instead of racing on DDL.
LOCK_KEY = 0x0FF517E


@dataclass(frozen=True, slots=True)
class Migration:
    package: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


class MigrationError(Exception):
    """A migration failed or an applied one was changed afterwards."""


def discover(packages: tuple[str, ...] = PACKAGES) -> list[Migration]:
    found: list[Migration] = []
    for package in packages:
        folder = resources.files(package) / "migrations"
        if not folder.is_dir():
            continue
        names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".sql"))
        found += [
            Migration(package, name, (folder / name).read_text(encoding="utf-8")) for name in names
        ]
    return found


def migrate(
    conn: psycopg.Connection[Any], settings: Settings, timescaledb: bool = True
) -> DbCapabilities:
    """Apply what is missing. Safe to run from several processes at once.

    `timescaledb=False` does not even try the extension (after it closed a connection).
    """
    conn.autocommit = True
    conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
    try:
        caps = enable_timescaledb(conn, attempt=timescaledb)
        # Migrations read these to choose between hypertables and native partitions.
        conn.execute(
            "SELECT set_config('offsite.timescaledb', %s, false),"
            " set_config('offsite.chunk_interval', %s, false)",
            (
                "on" if caps.timescaledb else "off",
                f"{int(settings.storage.chunk_interval.total_seconds())} seconds",
            ),
        )
        conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   package text NOT NULL,
                   name text NOT NULL,
                   checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now(),
                   PRIMARY KEY (package, name))"""
        )
        applied = {
            (r[0], r[1]): r[2]
            for r in conn.execute("SELECT package, name, checksum FROM schema_migrations")
        }
        for m in discover():
            key = (m.package, m.name)
            if key in applied:
                if applied[key] != m.checksum:
                    raise MigrationError(
                        f"migration {m.package}/{m.name} was changed after it was applied; "
                        "add a new migration instead"
                    )
                continue
            log.info("applying migration %s/%s", m.package, m.name)
            try:
                with conn.transaction():
                    conn.execute(m.sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (package, name, checksum)"
                        " VALUES (%s, %s, %s)",
                        (m.package, m.name, m.checksum),
                    )
            except psycopg.Error as err:
                raise MigrationError(f"migration {m.package}/{m.name} failed: {err}") from err
        return caps
    finally:
        # A lost connection released the lock with the session.
        if not (conn.closed or conn.broken):
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


def prepare_database(
    conn: psycopg.Connection[Any], settings: Settings, timescaledb: bool = True
) -> DbCapabilities:
    """Migrate, then upsert the reference data every instance relies on."""
    caps = migrate(conn, settings, timescaledb)
    seed_departments(conn)
    return caps


def prepare(url: str, settings: Settings, connect_timeout: int = 10) -> DbCapabilities:
    """Connect, migrate and seed; when enabling TimescaleDB ends the session, once more on
    a fresh connection with plain tables."""
    try:
        with psycopg.connect(url, connect_timeout=connect_timeout) as conn:
            return prepare_database(conn, settings)
    except TimescaleConnectionLostError as err:
        log.warning("%s; migrating again on a fresh connection with plain tables", err)
    with psycopg.connect(url, connect_timeout=connect_timeout) as conn:
        return prepare_database(conn, settings, timescaledb=False)
