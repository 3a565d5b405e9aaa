"""Database pool and the capabilities of the server we are connected to."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from offsite.settings import DatabaseSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DbCapabilities:
    """What the connected server offers that changes how we lay out tables."""

    timescaledb: bool
    server_version: int


def create_pool(settings: DatabaseSettings, url: str, name: str = "offsite") -> ConnectionPool:
    """A pool that opens lazily: a database that is down at start is retried, not fatal."""
    return ConnectionPool(
        url,
        min_size=settings.pool_min,
        max_size=settings.pool_max,
        kwargs={"connect_timeout": int(max(1, settings.connect_timeout_s))},
        name=name,
        open=False,
        # Keep trying through long outages (a day): an outage is back-pressure, not a crash.
        reconnect_timeout=86400,
    )


@dataclass(frozen=True, slots=True)
class TimescaleState:
    """What the server says about TimescaleDB before we try it."""

    available: bool  # in pg_available_extensions (the package is installed)
    created: bool  # CREATE EXTENSION was run in this database already
    preload: str  # the shared_preload_libraries setting, as the server reports it

    @property
    def preloaded(self) -> bool:
        libs = (part.strip().strip('"').rsplit("/", 1)[-1] for part in self.preload.split(","))
        return any(lib.removesuffix(".so") == "timescaledb" for lib in libs)

    def advice(self) -> str | None:
        """Why TimescaleDB cannot be used, and what to change; None when it can."""
        if not self.available or self.preloaded:
            return None
        now = self.preload or "(empty)"
        wanted = f"{self.preload},timescaledb" if self.preload else "timescaledb"
        return (
            "TimescaleDB is installed but not preloaded: CREATE EXTENSION would end the"
            f" connection. shared_preload_libraries is {now}; set"
            f" shared_preload_libraries = '{wanted}' in postgresql.conf and restart PostgreSQL"
            " to use hypertables. Carrying on with plain tables (native partitions)."
        )


def timescale_state(conn: psycopg.Connection[Any]) -> TimescaleState:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'),"
        " EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'),"
        " current_setting('shared_preload_libraries')"
    ).fetchone()
    assert row is not None
    return TimescaleState(bool(row[0]), bool(row[1]), str(row[2]))


def enable_timescaledb(conn: psycopg.Connection[Any], attempt: bool = True) -> DbCapabilities:
    """Create the TimescaleDB extension when the server can load it; report what we got.

    A TimescaleDB that is installed but missing from shared_preload_libraries makes
    CREATE EXTENSION fail FATAL and close the connection, so that state is detected first
    and never tried.
    """
    version = conn.info.server_version
    state = timescale_state(conn)
    if not state.available:
        return DbCapabilities(timescaledb=False, server_version=version)
    if not attempt:
        log.warning("TimescaleDB could not be enabled on an earlier connection; plain tables")
        return DbCapabilities(timescaledb=False, server_version=version)
    advice = state.advice()
    if advice is not None:
        log.warning("%s", advice)
        return DbCapabilities(timescaledb=False, server_version=version)
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.Error as err:
        if conn.closed or conn.broken:
            raise TimescaleConnectionLostError(
                f"CREATE EXTENSION timescaledb closed the connection ({err}); check that"
                " timescaledb is in shared_preload_libraries and PostgreSQL was restarted"
            ) from err
        log.warning("TimescaleDB is installed but cannot be enabled (%s); using plain tables", err)
        return DbCapabilities(timescaledb=False, server_version=version)
    return DbCapabilities(timescaledb=True, server_version=version)


class TimescaleConnectionLostError(Exception):
    """Enabling TimescaleDB ended the session: migrate again on a fresh connection with
    `attempt=False` (offsite.migrations.prepare does)."""
