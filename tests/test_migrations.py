"""Migrations apply once, from several processes at once, and refuse edited history."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest

from offsite.migrations import Migration, MigrationError, discover, migrate
from offsite.settings import load_settings


def test_concurrent_migrate_applies_each_migration_once(empty_db_url: str) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with psycopg.connect(empty_db_url) as conn:
                migrate(conn, load_settings(config_file=None))
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
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
