"""Shared fixtures: a real PostgreSQL (a database per test) and a real Mosquitto per session."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool

from api.context import ApiContext
from offsite.embedded import EmbeddedBroker, EmbeddedPostgres, free_port
from offsite.migrations import prepare_database
from offsite.settings import Settings, load_settings
from subjects.service import SubjectsService
from subjects.settings import SubjectsSettings


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server we may create databases on: OFFSITE_TEST_DATABASE_URL, else an embedded one."""
    url = os.environ.get("OFFSITE_TEST_DATABASE_URL")
    if url:
        yield url
        return
    # Not under pytest's basetemp: another pytest session on the host resets its parent to
    # 0700, and the server (a system user when we are root) could no longer reach its files.
    home = Path(tempfile.mkdtemp(prefix="offsite-test-pg-"))
    home.chmod(0o755)
    pg = EmbeddedPostgres(home / "data", durable=False)
    pg.start()
    try:
        yield pg.url
    finally:
        pg.stop()
        shutil.rmtree(home, ignore_errors=True)


def _with_db(url: str, dbname: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = dbname
    return psycopg.conninfo.make_conninfo("", **info)


@pytest.fixture(scope="session")
def migrated_template(pg_admin_url: str) -> Iterator[str]:
    """A database with every migration applied, copied for each test."""
    name = f"offsite_tpl_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(_with_db(pg_admin_url, name)) as conn:
            prepare_database(conn, load_settings(config_file=None))
            # TimescaleDB runs a job scheduler in each database with the extension; one
            # connected to the template makes CREATE DATABASE ... TEMPLATE fail at random.
            if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone():
                conn.execute("SELECT _timescaledb_functions.stop_background_workers()")
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            # Also keeps TimescaleDB from restarting that scheduler on CREATE DATABASE.
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        yield name
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db_url(pg_admin_url: str, migrated_template: str) -> Iterator[str]:
    """A fresh, fully migrated database of this test's own."""
    yield from _scratch_database(pg_admin_url, "offsite_t", f' TEMPLATE "{migrated_template}"')


@pytest.fixture
def empty_db_url(pg_admin_url: str) -> Iterator[str]:
    """A database with no migrations applied (for migration tests)."""
    yield from _scratch_database(pg_admin_url, "offsite_e")


def _scratch_database(admin_url: str, prefix: str, template: str = "") -> Iterator[str]:
    """The URL of a new database (of `template`, if given), dropped after the test."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"{template}')
    try:
        yield _with_db(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection to this test's database."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """Mosquitto started with the project's config on a free loopback port."""
    b = EmbeddedBroker(tmp_path_factory.mktemp("broker"))
    b.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def own_broker() -> Iterator[EmbeddedBroker]:
    """A Mosquitto of this test's own (the project's config, a free port): nothing retained
    or queued by other tests, and free to stop and start."""
    home = Path(tempfile.mkdtemp(prefix="offsite-test-own-broker-"))
    home.chmod(0o777)  # Mosquitto started by root writes its state as its own user
    b = EmbeddedBroker(home, port=free_port())
    b.start()
    try:
        yield b
    finally:
        b.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def make_settings(tmp_path: Path, db_url: str, broker: EmbeddedBroker) -> Any:
    """Build Settings pointed at this test's database and the session broker."""

    def build(**overrides: Any) -> Settings:
        base: dict[str, Any] = {
            "state_dir": tmp_path / "state",
            "database": {"url": db_url},
            "mqtt": {"url": broker.url, "client_id": f"offsite-test-{uuid.uuid4().hex[:8]}"},
            "http": {"port": 0},
        }
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                base[key] = {**base[key], **value}
            else:
                base[key] = value
        return load_settings(config_file=None, **base)

    return build


@pytest.fixture
def subjects_ctx(db_url: str) -> Iterator[ApiContext]:
    """The API's context over this test's database with the subjects service running."""
    pool = ConnectionPool(db_url, min_size=1, max_size=4, open=True)
    subjects = SubjectsService(SubjectsSettings(listen=False), pool, CollectorRegistry())
    subjects.start()
    ctx = ApiContext(pool, CollectorRegistry(), lambda: {"database": True, "broker": True})
    ctx.provide(SubjectsService, subjects)
    yield ctx
    subjects.stop()
    pool.close()
