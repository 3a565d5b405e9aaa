"""Native partitions ahead of time, rows rescued from the default partition, retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from ingest.settings import StorageSettings
from ingest.storage import is_hypertable, maintain, partition_bounds, partition_name

NOW = datetime(2026, 11, 26, 10, 30, tzinfo=UTC)


@pytest.fixture
def db(db: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    if is_hypertable(db):
        pytest.skip(
            "readings is a TimescaleDB hypertable on this server; these tests cover native"
            " partitions (tests/ingest/test_timescaledb.py covers the hypertable)"
        )
    return db


def partitions(db: psycopg.Connection[Any]) -> list[str]:
    return sorted(
        r[0]
        for r in db.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'readings'::regclass"
        )
    )


def test_bounds_are_aligned_to_the_epoch() -> None:
    lo, hi = partition_bounds(NOW, timedelta(days=1))
    assert (lo, hi) == (datetime(2026, 11, 26, tzinfo=UTC), datetime(2026, 11, 27, tzinfo=UTC))
    lo, _ = partition_bounds(NOW, timedelta(hours=6))
    assert lo == datetime(2026, 11, 26, 6, tzinfo=UTC)
    assert partition_name(lo) == "readings_p20261126_060000"


def test_partitions_are_created_ahead_and_rows_move_out_of_default(
    db: psycopg.Connection[Any],
) -> None:
    early = NOW + timedelta(days=2, hours=1)
    db.execute(
        "INSERT INTO readings VALUES (%s, 'd', 'm', 1), (%s, 'd', 'm', 2)",
        (early, NOW - timedelta(days=30)),
    )
    settings = StorageSettings(chunk_interval=timedelta(days=1), partitions_ahead=3)
    report = maintain(db, settings, NOW)
    assert partitions(db) == [
        "readings_default",
        "readings_p20261124_000000",
        "readings_p20261125_000000",
        "readings_p20261126_000000",
        "readings_p20261127_000000",
        "readings_p20261128_000000",
        "readings_p20261129_000000",
    ]
    assert report.moved_from_default == 1
    row = db.execute("SELECT tableoid::regclass::text FROM readings WHERE value = 1").fetchone()
    assert row == ("readings_p20261128_000000",)
    # Backfill older than the partitions stays reachable through the default partition.
    row = db.execute("SELECT tableoid::regclass::text FROM readings WHERE value = 2").fetchone()
    assert row == ("readings_default",)
    again = maintain(db, settings, NOW)
    assert again.created == ()


def test_retention_drops_old_partitions_and_old_default_rows(db: psycopg.Connection[Any]) -> None:
    settings = StorageSettings(chunk_interval=timedelta(days=1), retention=timedelta(days=10))
    maintain(db, settings, NOW)
    db.execute("INSERT INTO readings VALUES (%s, 'd', 'm', 3)", (NOW - timedelta(days=20),))
    later = NOW + timedelta(days=12)
    report = maintain(db, settings, later)
    assert "readings_p20261124_000000" in report.dropped
    assert report.deleted_expired == 1
    assert db.execute("SELECT count(*) FROM readings WHERE value = 3").fetchone() == (0,)
    assert partition_name(partition_bounds(later, timedelta(days=1))[0]) in partitions(db)


def test_hourly_view_has_the_continuous_aggregate_shape(db: psycopg.Connection[Any]) -> None:
    maintain(db, StorageSettings(), NOW)
    db.execute(
        "INSERT INTO readings VALUES (%s, 'aq', 'pm25', 10), (%s, 'aq', 'pm25', 30)",
        (NOW, NOW + timedelta(minutes=20)),
    )
    rows = db.execute(
        "SELECT bucket, avg, min, max, count FROM readings_1h WHERE device_id = 'aq'"
    ).fetchall()
    assert rows == [(datetime(2026, 11, 26, 10, tzinfo=UTC), 20.0, 10.0, 30.0, 2)]
