"""Readings storage upkeep: partitions ahead of time, retention, TimescaleDB policies."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from ingest.metrics import IngestMetrics
from ingest.settings import StorageSettings
from supervise.worker import Supervised, Supervisor

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LOCK_KEY = 0x0FF5170
# Partitions kept behind "now" at start. Older backfill lands in readings_default, which
# retention trims like any partition; it saves creating a year of empty tables.
LOOKBACK_PARTITIONS = 2
# The newest hour is still filling; the continuous aggregate leaves it to real-time queries.
_CAGG_END_OFFSET = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class MaintenanceReport:
    created: tuple[str, ...]
    dropped: tuple[str, ...]
    moved_from_default: int
    deleted_expired: int


def partition_bounds(t: datetime, interval: timedelta) -> tuple[datetime, datetime]:
    """The [start, end) of the partition holding t; partitions are aligned to the epoch."""
    width = interval.total_seconds()
    n = int((t - _EPOCH).total_seconds() // width)
    start = _EPOCH + timedelta(seconds=n * width)
    return start, start + interval


def partition_name(start: datetime) -> str:
    return "readings_p" + start.strftime("%Y%m%d_%H%M%S")


def is_hypertable(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')"
    ).fetchone()
    if not row or not row[0]:
        return False
    found = conn.execute(
        "SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = 'readings'"
    ).fetchone()
    return found is not None


def _existing_partitions(conn: psycopg.Connection[Any]) -> set[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'readings'::regclass"
    ).fetchall()
    return {r[0] for r in rows}


def maintain(
    conn: psycopg.Connection[Any], settings: StorageSettings, now: datetime
) -> MaintenanceReport:
    """Create partitions ahead, apply retention. Idempotent; serialised across instances."""
    conn.autocommit = True
    conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        if is_hypertable(conn):
            _timescale_policies(conn, settings)
            return MaintenanceReport((), (), 0, _expire_dead_letters(conn, settings, now))
        return _maintain_native(conn, settings, now)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


def _maintain_native(
    conn: psycopg.Connection[Any], settings: StorageSettings, now: datetime
) -> MaintenanceReport:
    interval = settings.chunk_interval
    existing = _existing_partitions(conn)
    start, _ = partition_bounds(now, interval)
    wanted = [
        start + interval * k for k in range(-LOOKBACK_PARTITIONS, settings.partitions_ahead + 1)
    ]
    created: list[str] = []
    moved = 0
    for lo in wanted:
        name = partition_name(lo)
        if name in existing:
            continue
        hi = lo + interval
        with conn.transaction():
            ident = sql.Identifier(name)
            conn.execute(
                sql.SQL("CREATE TABLE {} (LIKE readings INCLUDING DEFAULTS)").format(ident)
            )
            # Rows that arrived before the partition existed sit in the default partition;
            # they must move, or ATTACH refuses the overlapping range.
            cur = conn.execute(
                sql.SQL(
                    "WITH moved AS (DELETE FROM readings_default"
                    " WHERE time >= %s AND time < %s RETURNING *)"
                    " INSERT INTO {} SELECT * FROM moved"
                ).format(ident),
                (lo, hi),
            )
            moved += cur.rowcount
            # DDL takes no bind parameters; the bounds are datetimes we computed.
            conn.execute(
                sql.SQL(
                    "ALTER TABLE readings ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})"
                ).format(ident, sql.Literal(lo), sql.Literal(hi))
            )
        created.append(name)
    cutoff = now - settings.retention
    dropped: list[str] = []
    for name in sorted(existing):
        if not name.startswith("readings_p"):
            continue
        lo = datetime.strptime(name[len("readings_p") :], "%Y%m%d_%H%M%S").replace(tzinfo=UTC)
        if lo + interval <= cutoff:
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
            dropped.append(name)
    deleted = conn.execute("DELETE FROM readings_default WHERE time < %s", (cutoff,)).rowcount
    _plain_hourly_view(conn)
    deleted += _expire_dead_letters(conn, settings, now)
    if created or dropped:
        log.info("readings partitions: created %s, dropped %s", created, dropped)
    return MaintenanceReport(tuple(created), tuple(dropped), moved, deleted)


def _expire_dead_letters(
    conn: psycopg.Connection[Any], settings: StorageSettings, now: datetime
) -> int:
    return conn.execute(
        "DELETE FROM dead_letters WHERE received_at < %s", (now - settings.retention,)
    ).rowcount


def _timescale_policies(conn: psycopg.Connection[Any], settings: StorageSettings) -> None:
    conn.execute("SELECT set_chunk_time_interval('readings', %s)", (settings.chunk_interval,))
    if not _compression_configured(conn):
        conn.execute(
            "ALTER TABLE readings SET (timescaledb.compress,"
            " timescaledb.compress_segmentby = 'device_id, metric',"
            " timescaledb.compress_orderby = 'time DESC')"
        )
    # Each policy is replaced only when its setting changed: a job added anew restarts its
    # schedule, and TimescaleDB refuses a second, overlapping aggregate policy.
    if not _has_policy(
        conn, "policy_compression", "readings", compress_after=settings.compress_after
    ):
        conn.execute("SELECT remove_compression_policy('readings', if_exists => true)")
        conn.execute(
            "SELECT add_compression_policy('readings', compress_after => %s)",
            (settings.compress_after,),
        )
    if not _has_policy(conn, "policy_retention", "readings", drop_after=settings.retention):
        conn.execute("SELECT remove_retention_policy('readings', if_exists => true)")
        conn.execute(
            "SELECT add_retention_policy('readings', drop_after => %s)", (settings.retention,)
        )
    # Hourly means are what air-quality standards judge; keep them materialised.
    # (CREATE ... WITH (timescaledb.continuous) cannot run in a transaction, hence here.)
    conn.execute(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS readings_1h WITH (timescaledb.continuous) AS"
        " SELECT time_bucket('1 hour', time) AS bucket, device_id, metric,"
        " avg(value) AS avg, min(value) AS min, max(value) AS max, count(*) AS count"
        " FROM readings GROUP BY bucket, device_id, metric WITH NO DATA"
    )
    # Real-time aggregation: rows not materialised yet (the current hour, late data) are
    # aggregated on read, so readings_1h answers like the plain-PostgreSQL view does.
    # TimescaleDB >= 2.13 creates materialised-only aggregates by default.
    only = conn.execute(
        "SELECT materialized_only FROM timescaledb_information.continuous_aggregates"
        " WHERE view_schema = current_schema() AND view_name = 'readings_1h'"
    ).fetchone()
    if only is not None and only[0]:
        conn.execute(
            "ALTER MATERIALIZED VIEW readings_1h SET (timescaledb.materialized_only = false)"
        )
    if not _has_policy(
        conn,
        "policy_refresh_continuous_aggregate",
        "readings_1h",
        start_offset=settings.retention,
        end_offset=_CAGG_END_OFFSET,
    ):
        conn.execute("SELECT remove_continuous_aggregate_policy('readings_1h', if_exists => true)")
        conn.execute(
            "SELECT add_continuous_aggregate_policy('readings_1h',"
            " start_offset => %s, end_offset => %s,"
            " schedule_interval => INTERVAL '5 minutes')",
            (settings.retention, _CAGG_END_OFFSET),
        )


def _compression_configured(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute(
        "SELECT string_agg(attname, ', ' ORDER BY segmentby_column_index)"
        " FILTER (WHERE segmentby_column_index IS NOT NULL),"
        " string_agg(attname, ', ' ORDER BY orderby_column_index)"
        " FILTER (WHERE orderby_column_index IS NOT NULL)"
        " FROM timescaledb_information.compression_settings"
        " WHERE hypertable_schema = current_schema() AND hypertable_name = 'readings'"
    ).fetchone()
    return row == ("device_id, metric", "time")


def _has_policy(
    conn: psycopg.Connection[Any], proc: str, relation: str, **offsets: timedelta
) -> bool:
    """Whether exactly one `proc` job exists on `relation` with these interval settings."""
    same = sql.SQL(" AND ").join(
        sql.SQL("(config->>{})::interval = {}").format(sql.Literal(key), sql.Placeholder())
        for key in offsets
    )
    row = conn.execute(
        sql.SQL(
            "SELECT count(*) FILTER (WHERE {}), count(*) FROM timescaledb_information.jobs"
            " WHERE proc_name = {} AND hypertable_schema = current_schema()"
            " AND hypertable_name = {}"
        ).format(same, sql.Placeholder(), sql.Placeholder()),
        (*offsets.values(), proc, relation),
    ).fetchone()
    return row == (1, 1)


def _plain_hourly_view(conn: psycopg.Connection[Any]) -> None:
    # The same relation name and columns as the continuous aggregate, so queries and
    # dashboards work on both; here it is computed on read with date_bin.
    conn.execute(
        "CREATE OR REPLACE VIEW readings_1h AS"
        " SELECT date_bin('1 hour', time, '1970-01-01 00:00:00+00') AS bucket, device_id,"
        " metric, avg(value) AS avg, min(value) AS min, max(value) AS max, count(*) AS count"
        " FROM readings GROUP BY 1, device_id, metric"
    )


class StorageMaintainer:
    """Runs `maintain` at start and then every `maintenance_interval_s` in a thread."""

    def __init__(
        self,
        settings: StorageSettings,
        conninfo: str,
        metrics: IngestMetrics,
        supervisor: Supervisor | None = None,
    ) -> None:
        self.settings = settings
        self.conninfo = conninfo
        self.metrics = metrics
        self.supervisor = supervisor or Supervisor()
        self._stop = threading.Event()
        self._worker: Supervised | None = None
        self._next = 0.0

    def run_once(self) -> MaintenanceReport:
        # A connection of its own: maintain() runs in autocommit, which pooled connections
        # of other users must not inherit.
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            report = maintain(conn, self.settings, datetime.now(UTC))
        self.metrics.partitions_created.inc(len(report.created))
        return report

    def start(self) -> None:
        self._stop.clear()
        self._next = time.monotonic() + self.settings.maintenance_interval_s
        # Creating partitions or a compression run can take minutes on a big table.
        self._worker = self.supervisor.start("storage-maint", self._step, stall_s=1800.0)

    def stop(self) -> bool:
        self._stop.set()
        return self.supervisor.retire(self._worker, 10)

    def _step(self) -> bool:
        if self._stop.wait(min(1.0, self.settings.maintenance_interval_s)):
            return False
        if time.monotonic() < self._next:
            return True
        self._next = time.monotonic() + self.settings.maintenance_interval_s
        try:
            self.run_once()
        except psycopg.Error as err:
            log.warning("storage maintenance failed, will retry: %s", err)
        return True
