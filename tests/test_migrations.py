"""Migrations apply once, from several processes at once, and refuse edited history."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from offsite.migrations import Migration, MigrationError, discover, migrate
from offsite.settings import load_settings
from tests.helpers import in_threads


def test_concurrent_migrate_applies_each_migration_once(empty_db_url: str) -> None:
    def run(_: int) -> None:
        with psycopg.connect(empty_db_url) as conn:
            migrate(conn, load_settings(config_file=None))

    assert in_threads(run, 3) == []
    with psycopg.connect(empty_db_url) as conn:
        rows = conn.execute("SELECT package, name FROM schema_migrations").fetchall()
    assert sorted(rows) == sorted((m.package, m.name) for m in discover())


def test_edited_migration_is_refused(db: psycopg.Connection[Any]) -> None:
    first: Migration = discover()[0]
    db.execute(
        "UPDATE schema_migrations SET checksum = 'x' WHERE package = %s AND name = %s",
        (first.package, first.name),
    )
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(db, load_settings(config_file=None))
