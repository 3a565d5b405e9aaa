"""TimescaleDB path: hypertable, policies, continuous aggregate, late data, time_bucket API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from api.auth import create_key
from ingest.metrics import IngestMetrics
from ingest.models import DeadLetter, Reading, RejectReason
from ingest.settings import IngestSettings, StorageSettings
from ingest.storage import is_hypertable, maintain
from ingest.writer import BatchWriter, Envelope

pytestmark = pytest.mark.timescaledb


def _skip_unless_timescaledb(db: psycopg.Connection[Any]) -> None:
    if is_hypertable(db):
        return
    available = db.execute(
        "SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    if available is None:
        why = "the extension is not available (point OFFSITE_TEST_DATABASE_URL at a server with it)"
    else:
        why = (
            f"version {available[0]} is available but was not enabled"
            " (is 'timescaledb' in shared_preload_libraries?)"
        )
    pytest.skip(f"TimescaleDB is not installed on the test server: {why}")


@pytest.fixture
def tsdb(db: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """The test database, when readings is a hypertable there; otherwise the test skips."""
    _skip_unless_timescaledb(db)
    return db


def _now_hour() -> datetime:
    # Real time, not a fixed date: the scheduler's policies act relative to now().
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def _chunk_interval(db: psycopg.Connection[Any]) -> timedelta:
    row = db.execute(
        "SELECT time_interval FROM timescaledb_information.dimensions"
        " WHERE hypertable_name = 'readings' AND column_name = 'time'"
    ).fetchone()
    assert row is not None
    value: timedelta = row[0]
    return value


def _jobs(db: psycopg.Connection[Any]) -> dict[str, list[dict[str, Any]]]:
    jobs: dict[str, list[dict[str, Any]]] = {}
    for proc, name, job_id, config in db.execute(
        "SELECT proc_name, hypertable_name, job_id, config FROM timescaledb_information.jobs"
        " WHERE proc_name IN"
        " ('policy_compression', 'policy_retention', 'policy_refresh_continuous_aggregate')"
    ):
        jobs.setdefault(proc, []).append({"on": name, "job_id": job_id, **config})
    return jobs


def test_readings_is_a_hypertable_with_the_configured_chunk_interval(
    tsdb: psycopg.Connection[Any],
) -> None:
    # Migrations ran with the default settings, which set the interval at creation.
    assert _chunk_interval(tsdb) == StorageSettings().chunk_interval
    maintain(tsdb, StorageSettings(chunk_interval=timedelta(hours=6)), _now_hour())
    assert _chunk_interval(tsdb) == timedelta(hours=6)
    # New chunks follow the new width.
    t = _now_hour() + timedelta(days=3)
    tsdb.execute("INSERT INTO readings VALUES (%s, 'd', 'm', 1)", (t,))
    row = tsdb.execute(
        "SELECT range_end - range_start FROM timescaledb_information.chunks"
        " WHERE hypertable_name = 'readings' AND range_start <= %s AND range_end > %s",
        (t, t),
    ).fetchone()
    assert row == (timedelta(hours=6),)


def test_maintain_sets_compression_retention_and_the_hourly_aggregate(
    tsdb: psycopg.Connection[Any],
) -> None:
    settings = StorageSettings(compress_after=timedelta(days=3), retention=timedelta(days=30))
    report = maintain(tsdb, settings, _now_hour())
    assert (report.created, report.dropped) == ((), ())

    segmentby = tsdb.execute(
        "SELECT attname FROM timescaledb_information.compression_settings"
        " WHERE hypertable_name = 'readings' AND segmentby_column_index IS NOT NULL"
        " ORDER BY segmentby_column_index"
    ).fetchall()
    assert segmentby == [("device_id",), ("metric",)]
    jobs = _jobs(tsdb)
    assert [(j["on"], j["compress_after"]) for j in jobs["policy_compression"]] == [
        ("readings", "3 days")
    ]
    assert [(j["on"], j["drop_after"]) for j in jobs["policy_retention"]] == [
        ("readings", "30 days")
    ]
    cagg = tsdb.execute(
        "SELECT view_name, hypertable_name FROM timescaledb_information.continuous_aggregates"
    ).fetchall()
    assert cagg == [("readings_1h", "readings")]
    assert len(jobs["policy_refresh_continuous_aggregate"]) == 1

    # Idempotent: unchanged policies keep their jobs (and so their schedules).
    maintain(tsdb, settings, _now_hour())
    assert _jobs(tsdb) == jobs
    # A changed setting replaces that policy instead of adding a second one.
    maintain(tsdb, settings.model_copy(update={"retention": timedelta(days=60)}), _now_hour())
    jobs = _jobs(tsdb)
    assert [j["drop_after"] for j in jobs["policy_retention"]] == ["60 days"]
    assert len(jobs["policy_compression"]) == 1
    assert len(jobs["policy_refresh_continuous_aggregate"]) == 1

    # The aggregate has the columns of the plain-PostgreSQL view and the same figures.
    hour = _now_hour() - timedelta(hours=3)
    tsdb.execute(
        "INSERT INTO readings VALUES (%s, 'aq', 'pm25', 10), (%s, 'aq', 'pm25', 30)",
        (hour, hour + timedelta(minutes=20)),
    )
    tsdb.execute("CALL refresh_continuous_aggregate('readings_1h', NULL, NULL)")
    # Not materialised yet: real-time aggregation answers for it, as the plain view would.
    current = _now_hour()
    tsdb.execute("INSERT INTO readings VALUES (%s, 'aq', 'pm25', 50)", (current,))
    rows = tsdb.execute(
        "SELECT bucket, avg, min, max, count FROM readings_1h WHERE device_id = 'aq'"
        " ORDER BY bucket"
    ).fetchall()
    assert rows == [(hour, 20.0, 10.0, 30.0, 2), (current, 50.0, 50.0, 50.0, 1)]
    realtime = tsdb.execute(
        "SELECT NOT materialized_only FROM timescaledb_information.continuous_aggregates"
        " WHERE view_name = 'readings_1h'"
    ).fetchone()
    assert realtime == (True,)


def _compress_all(db: psycopg.Connection[Any]) -> int:
    for attempt in range(5):
        try:
            db.execute(
                "SELECT compress_chunk(c, if_not_compressed => true) FROM show_chunks('readings') c"
            )
            break
        except psycopg.errors.DuplicateObject:
            # maintain()'s compression policy, run by the scheduler, got to a chunk first.
            if attempt == 4:
                raise
    row = db.execute(
        "SELECT count(*) FILTER (WHERE NOT is_compressed) FROM timescaledb_information.chunks"
        " WHERE hypertable_name = 'readings'"
    ).fetchone()
    assert row == (0,), "every chunk should be compressed now"
    compressed = db.execute(
        "SELECT count(*) FROM timescaledb_information.chunks"
        " WHERE hypertable_name = 'readings' AND is_compressed"
    ).fetchone()
    assert compressed is not None
    return int(compressed[0])


def _envelope(mid: int, readings: list[Reading]) -> Envelope:
    return Envelope(
        mid=mid,
        qos=1,
        topic=f"offsite/telemetry/{readings[0].device_id}",
        device_id=readings[0].device_id,
        payload=b"{}",
        received_at=datetime.now(UTC),
        readings=tuple(readings),
    )


def _staging_used(conn: psycopg.Connection[Any]) -> bool:
    # The slow path creates this session's staging table; the COPY fast path never does.
    row = conn.execute("SELECT to_regclass('pg_temp.readings_stage') IS NOT NULL").fetchone()
    conn.commit()
    return bool(row and row[0])


def _stored(db: psycopg.Connection[Any], device: str) -> dict[datetime, float]:
    rows = db.execute(
        "SELECT time, value FROM readings WHERE device_id = %s AND metric = 'pm25'", (device,)
    ).fetchall()
    return dict(rows)


def test_writer_copy_and_on_conflict_paths_with_late_data_into_compressed_chunks(
    tsdb: psycopg.Connection[Any], db_url: str
) -> None:
    maintain(tsdb, StorageSettings(), _now_hour())
    writer = BatchWriter(IngestSettings(), IngestMetrics(CollectorRegistry()))
    old = _now_hour() - timedelta(days=10)
    first = [Reading(old + timedelta(minutes=i), "late-1", "pm25", float(i)) for i in range(60)]
    recent = [Reading(_now_hour() + timedelta(seconds=i), "late-1", "pm25", 1.0) for i in range(5)]

    with psycopg.connect(db_url) as conn:
        out = writer.write(conn, [_envelope(1, first), _envelope(2, recent)])
        assert (out.written, out.duplicates, out.conflicts) == (65, 0, 0)
        assert not _staging_used(conn)

        assert _compress_all(tsdb) >= 2

        # Late data: new keys into the old, compressed chunk take the COPY fast path.
        late = [
            Reading(old + timedelta(minutes=i, seconds=30), "late-1", "pm25", 7.0)
            for i in range(10)
        ]
        out = writer.write(conn, [_envelope(3, late)])
        assert (out.written, out.duplicates, out.conflicts) == (10, 0, 0)
        assert not _staging_used(conn)
        assert len(_stored(tsdb, "late-1")) == 75

        _compress_all(tsdb)  # the late rows too, so redelivery meets compressed rows only

        # Redelivery of compressed rows plus one new late key: the unique violation raised
        # against compressed data sends the batch down ON CONFLICT DO NOTHING.
        extra = Reading(old + timedelta(minutes=90), "late-1", "pm25", 42.0)
        out = writer.write(conn, [_envelope(4, [*first, extra])])
        assert (out.written, out.duplicates, out.conflicts) == (1, 60, 0)
        assert out.committed == [extra]
        assert _staging_used(conn)

        _compress_all(tsdb)

        # Conflict on a compressed row: first value wins, the new one becomes a dead letter.
        clash = Reading(first[5].time, "late-1", "pm25", -1.0)
        out = writer.write(conn, [_envelope(5, [clash])])
        assert (out.written, out.duplicates, out.conflicts) == (0, 0, 1)
        letter: DeadLetter = out.dead_letters[0]
        assert letter.reason is RejectReason.CONFLICT
        assert "already stored as 5.0" in letter.detail

    stored = _stored(tsdb, "late-1")
    assert len(stored) == 76
    assert stored[first[5].time] == 5.0
    assert stored[extra.time] == 42.0
    assert all(stored[r.time] == 7.0 for r in late)
    row = tsdb.execute(
        "SELECT count(*), count(DISTINCT (device_id, metric, time)) FROM readings"
    ).fetchone()
    assert row == (76, 76)
    assert tsdb.execute(
        "SELECT reason FROM dead_letters WHERE device_id = 'late-1'"
    ).fetchall() == [("conflict",)]
    # maintain() must keep working once chunks are compressed (it re-applies the settings).
    maintain(tsdb, StorageSettings(), _now_hour())


@pytest.mark.parametrize("bucket", ["5m", "7m", "1h", "5h", "1d", "2d", "7d"])
def test_bucketed_readings_with_time_bucket_match_date_bin(
    tsdb: psycopg.Connection[Any], client: TestClient, bucket: str
) -> None:
    start = datetime(2026, 10, 1, 3, 17, tzinfo=UTC)
    end = start + timedelta(days=20)
    tsdb.execute(
        "INSERT INTO devices (device_id, first_seen, last_seen) VALUES ('aq-1', %s, %s)",
        (start, start),
    )
    tsdb.execute(
        "INSERT INTO readings SELECT t, 'aq-1', 'pm25', extract(epoch FROM t)::integer %% 97"
        " FROM generate_series(%s::timestamptz, %s, '13 minutes') t",
        (start, end),
    )
    maintain(tsdb, StorageSettings(), _now_hour())
    _compress_all(tsdb)
    key = create_key(tsdb, "BDB", "platform_admin")  # aq-1 is unbound: the platform admin's
    r = client.get(
        "/api/v1/devices/aq-1/readings",
        params={
            "metric": "pm25",
            "from": (start + timedelta(hours=5)).isoformat(),
            "to": end.isoformat(),
            "bucket": bucket,
        },
        headers={"Authorization": f"Bearer {key}"},
    )
    assert r.status_code == 200, r.text
    got = [
        (datetime.fromisoformat(p["time"]), p["avg"], p["min"], p["max"], p["count"])
        for p in r.json()["points"]
    ]
    expected = tsdb.execute(
        "SELECT date_bin(%s::interval, time, '1970-01-01 00:00:00+00') AS b,"
        " avg(value), min(value), max(value), count(*) FROM readings"
        " WHERE device_id = 'aq-1' AND metric = 'pm25' AND time >= %s AND time < %s"
        " GROUP BY b ORDER BY b",
        (
            bucket.replace("m", " minutes").replace("h", " hours").replace("d", " days"),
            start + timedelta(hours=5),
            end,
        ),
    ).fetchall()
    assert len(got) == len(expected) > 1
    for (t, avg, lo, hi, n), (et, eavg, elo, ehi, en) in zip(got, expected, strict=True):
        assert (t, lo, hi, n) == (et, elo, ehi, en)
        assert avg == pytest.approx(eavg)
