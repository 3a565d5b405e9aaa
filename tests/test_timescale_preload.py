"""TimescaleDB installed but not preloaded: detected before CREATE EXTENSION, plain tables.

TimescaleDB is not in the package registries CI reaches, so the "installed, not preloaded"
state is mostly produced by reporting it from the detection query; the real server's own
settings are checked separately, and the last test runs the CLI against a server really in
that state when the test server is one.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from typing import Any

import psycopg
import pytest

from offsite import db as offsite_db
from offsite import migrations
from offsite.db import TimescaleConnectionLostError, TimescaleState, timescale_state
from offsite.migrations import prepare
from offsite.settings import load_settings


@pytest.mark.parametrize(
    ("preload", "preloaded", "wanted"),
    [
        ("", False, "shared_preload_libraries = 'timescaledb'"),
        (
            "pg_stat_statements",
            False,
            "shared_preload_libraries = 'pg_stat_statements,timescaledb'",
        ),
        ("pg_stat_statements, timescaledb", True, None),
        ('"$libdir/timescaledb.so"', True, None),
        ("timescaledb_toolkit", False, "'timescaledb_toolkit,timescaledb'"),
    ],
)
def test_the_advice_names_the_setting_to_add(
    preload: str, preloaded: bool, wanted: str | None
) -> None:
    state = TimescaleState(available=True, created=False, preload=preload)
    assert state.preloaded is preloaded
    advice = state.advice()
    if wanted is None:
        assert advice is None
    else:
        assert advice is not None
        assert wanted in advice
        assert "restart PostgreSQL" in advice


def test_not_installed_needs_no_advice() -> None:
    assert TimescaleState(available=False, created=False, preload="").advice() is None


def test_the_detection_reads_the_real_servers_settings(db: psycopg.Connection[Any]) -> None:
    state = timescale_state(db)
    row = db.execute("SHOW shared_preload_libraries").fetchone()
    assert row is not None
    assert state.preload == row[0]
    available = db.execute(
        "SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    assert available is not None
    assert state.available is (available[0] == 1)


def test_installed_but_not_preloaded_migrates_plain_tables_without_trying_the_extension(
    empty_db_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def reported(conn: psycopg.Connection[Any]) -> TimescaleState:
        return TimescaleState(available=True, created=False, preload="pg_stat_statements")

    monkeypatch.setattr(offsite_db, "timescale_state", reported)
    caplog.set_level(logging.WARNING, "offsite.db")
    caps = prepare(empty_db_url, load_settings(config_file=None))
    assert caps.timescaledb is False
    assert "'pg_stat_statements,timescaledb'" in caplog.text
    with psycopg.connect(empty_db_url) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() != (0,)
        assert conn.execute(
            "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'"
        ).fetchone() == (0,)
        # Native partitions, as on a server without TimescaleDB.
        kind = conn.execute("SELECT relkind FROM pg_class WHERE relname = 'readings'").fetchone()
        assert kind == ("p",)


def test_a_connection_the_extension_closed_is_replaced_and_migration_goes_on(
    empty_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = offsite_db.enable_timescaledb
    attempts: list[bool] = []

    def closing(conn: psycopg.Connection[Any], attempt: bool = True) -> Any:
        attempts.append(attempt)
        if attempt:
            # What the server does on CREATE EXTENSION without the preload: end the session.
            with pytest.raises(psycopg.OperationalError):
                conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
            assert conn.closed or conn.broken
            raise TimescaleConnectionLostError("the session ended")
        return real(conn, attempt)

    monkeypatch.setattr(migrations, "enable_timescaledb", closing)
    caps = prepare(empty_db_url, load_settings(config_file=None))
    assert attempts == [True, False]
    assert caps.timescaledb is False
    with psycopg.connect(empty_db_url) as conn:
        assert conn.execute("SELECT count(*) FROM departments").fetchone() != (0,)


def test_a_server_really_in_that_state_runs_migrate_and_keys(empty_db_url: str) -> None:
    """The real thing, where the test server has TimescaleDB installed and not preloaded
    (build it from source into the server, leave shared_preload_libraries alone, and point
    OFFSITE_TEST_DATABASE_URL at it)."""
    with psycopg.connect(empty_db_url) as conn:
        state = timescale_state(conn)
    if not state.available or state.preloaded:
        pytest.skip(
            "the test server is not in the state (TimescaleDB installed, not preloaded): "
            f"available={state.available}, shared_preload_libraries={state.preload!r}"
        )
    env = {**os.environ, "OFFSITE_DATABASE__URL": empty_db_url}
    for args in (["migrate"], ["keys", "create", "--department", "EEB", "--role", "viewer"]):
        done = subprocess.run(
            [sys.executable, "-m", "offsite.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, (args, done.stderr)
        assert "set shared_preload_libraries = 'timescaledb'" in done.stderr
    with psycopg.connect(empty_db_url) as conn:
        kind = conn.execute("SELECT relkind FROM pg_class WHERE relname = 'readings'").fetchone()
        assert kind == ("p",)
        assert conn.execute("SELECT count(*) FROM api_keys").fetchone() == (1,)
