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


def enable_timescaledb(conn: psycopg.Connection[Any]) -> DbCapabilities:
    """Create the TimescaleDB extension when the server has it; report what we got."""
    version = conn.info.server_version
    available = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    if available is None:
        return DbCapabilities(timescaledb=False, server_version=version)
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.Error as err:
        # Typically: the library is not in shared_preload_libraries.
        log.warning("TimescaleDB is installed but cannot be enabled (%s); using plain tables", err)
        return DbCapabilities(timescaledb=False, server_version=version)
    return DbCapabilities(timescaledb=True, server_version=version)
