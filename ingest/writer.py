"""Batch writer: commits readings, dead letters and device state, then acknowledges."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

import psycopg
from psycopg import errors

from ingest import deadletters
from ingest.deadletters import StoredLetter
from ingest.metrics import IngestMetrics
from ingest.models import (
    DeadLetter,
    DeviceStatus,
    Reading,
    ReadingSink,
    RejectReason,
    RelaySink,
    StatusSink,
)
from ingest.settings import IngestSettings
from supervise.worker import Supervised, Supervisor

log = logging.getLogger(__name__)

_COPY_READINGS = "COPY readings (time, device_id, metric, value, flag) FROM STDIN (FORMAT BINARY)"
_READING_TYPES = ["timestamptz", "text", "text", "float8", "text"]
# A device's last_seen is written at most this often: updating thousands of device rows on
# every batch would cost as much as the readings themselves.
LAST_SEEN_EVERY_S = 10.0


class Envelope(NamedTuple):
    """One decoded MQTT message waiting to be committed, then acknowledged (a NamedTuple:
    one is made per message on the intake's hot path, at a third of a dataclass's cost)."""

    mid: int
    qos: int
    topic: str
    device_id: str | None
    payload: bytes
    received_at: datetime
    readings: tuple[Reading, ...] = ()
    dead_letters: tuple[DeadLetter, ...] = ()
    status: DeviceStatus | None = None
    # Called from the writer thread once the envelope's rows are committed, instead of the
    # MQTT PUBACK (an HJ 212 reply over TCP); it must only hand over, never block.
    on_commit: Callable[[], None] | None = None
    # Readings that did not arrive as MQTT telemetry (HJ 212): an engine in another process
    # does not see them on the broker, so the relay gets them once committed, and the
    # envelope is acknowledged once the relay has them.
    relay: bool = False


class Acker(Protocol):
    """Sends the PUBACKs of messages once their rows are committed."""

    def ack_committed(self, mids: Sequence[int]) -> None:
        """PUBACK these QoS 1 message ids (one write for the batch)."""
        ...


@dataclass(slots=True)
class BatchOutcome:
    """What one committed batch did."""

    written: int = 0
    duplicates: int = 0
    conflicts: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)
    statuses: list[DeviceStatus] = field(default_factory=list)
    committed: list[Reading] = field(default_factory=list)
    # Readings of the batch stored already with the same value (a redelivery, a resend).
    repeated: list[Reading] = field(default_factory=list)


def _conflict_letter(env: Envelope, r: Reading, kept: float) -> DeadLetter:
    return DeadLetter(
        topic=env.topic,
        device_id=env.device_id,
        reason=RejectReason.CONFLICT,
        detail=(
            f"{r.metric} at {r.time.isoformat()} is already stored as {kept!r}; "
            f"the new value {r.value!r} was not stored (first value wins)"
        ),
        payload=env.payload,
    )


def _relayed(
    batch: Sequence[Envelope], outcome: BatchOutcome
) -> tuple[list[Reading], list[Reading]]:
    """The readings of the batch's relay envelopes: (newly stored, stored already), in
    commit order, each once; a conflicting value (not stored) is in neither."""
    relay = [env for env in batch if env.relay and env.readings]
    if not relay:
        return [], []
    if outcome.written == sum(len(env.readings) for env in batch):
        return [r for env in relay for r in env.readings], []  # all stored: the common case
    fresh = set(outcome.committed)
    repeated = set(outcome.repeated)
    new: list[Reading] = []
    again: list[Reading] = []
    for env in relay:
        for r in env.readings:
            if r in fresh:
                fresh.discard(r)  # a repeat inside the batch is relayed once
                new.append(r)
            elif r in repeated:
                repeated.discard(r)
                again.append(r)
    return new, again


def store_missing(conn: psycopg.Connection[Any], readings: Sequence[Reading]) -> int:
    """Insert the readings that are not stored yet and commit; a stored value wins. For a
    copy of the stream other than ingest's (failover/repair.py). Returns the rows added."""
    if not readings:
        return 0
    columns = list(zip(*readings, strict=True))
    with conn.transaction():
        cur = conn.execute(
            "INSERT INTO readings (time, device_id, metric, value, flag)"
            " SELECT * FROM unnest(%s::timestamptz[], %s::text[], %s::text[], %s::float8[],"
            " %s::text[]) ON CONFLICT (device_id, metric, time) DO NOTHING",
            [list(c) for c in columns],
        )
        return cur.rowcount


class BatchWriter:
    """Writes batches in one transaction each; idempotent on (device_id, metric, time)."""

    def __init__(self, settings: IngestSettings, metrics: IngestMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self._last_seen_written: dict[str, float] = {}

    def write(self, conn: psycopg.Connection[Any], batch: Sequence[Envelope]) -> BatchOutcome:
        """Write and commit `batch`. Raises psycopg errors; the caller retries the whole batch."""
        try:
            return self._commit(conn, batch, self._copy_readings)
        except errors.UniqueViolation:
            # Some rows are stored already (a redelivery, a conflict, a repeat inside the
            # batch): that transaction rolled back whole; write the batch the careful way.
            self.forget_last_seen()
            return self._commit(conn, batch, self._merge_readings)

    def _commit(
        self,
        conn: psycopg.Connection[Any],
        batch: Sequence[Envelope],
        readings: Callable[[psycopg.Connection[Any], Sequence[Envelope], BatchOutcome], None],
    ) -> BatchOutcome:
        out = BatchOutcome()
        for env in batch:
            out.dead_letters.extend(env.dead_letters)
        with conn.transaction():
            readings(conn, batch, out)
            if out.dead_letters:
                self._write_dead_letters(conn, out.dead_letters)
            self._touch_devices(conn, batch)
            out.statuses = self._apply_statuses(conn, batch)
        return out

    def _copy_readings(
        self, conn: psycopg.Connection[Any], batch: Sequence[Envelope], out: BatchOutcome
    ) -> None:
        """The common case: one binary COPY of every reading as it came. A reading that is
        stored already fails it with a unique violation, and the batch goes to the merge."""
        rows = [r for env in batch for r in env.readings]
        if not rows:
            return
        with conn.cursor() as cur, cur.copy(_COPY_READINGS) as copy:
            copy.set_types(_READING_TYPES)
            for r in rows:
                copy.write_row(r)  # a Reading is its row: the fields are the column order
        out.written = len(rows)
        out.committed = rows

    def _merge_readings(
        self, conn: psycopg.Connection[Any], batch: Sequence[Envelope], out: BatchOutcome
    ) -> None:
        """Stage the batch and insert what is new; the first value of a key wins, inside the
        batch and against the table, and a different later value is a conflict letter."""
        unique: dict[tuple[str, str, datetime], Reading] = {}
        envelope_of: dict[Reading, Envelope] = {}
        for env in batch:
            for r in env.readings:
                key = (r.device_id, r.metric, r.time)
                first = unique.get(key)
                if first is None:
                    unique[key] = r
                    envelope_of[r] = env
                elif first.value != r.value:
                    out.conflicts += 1
                    out.dead_letters.append(_conflict_letter(env, r, first.value))
                else:
                    out.duplicates += 1  # the first copy is the one stored or repeated
        rows = list(unique.values())
        if not rows:
            return
        with conn.cursor() as cur:
            cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS readings_stage"
                " (time timestamptz, device_id text, metric text, value float8, flag text)"
                " ON COMMIT DELETE ROWS"
            )
            with cur.copy(
                "COPY readings_stage (time, device_id, metric, value, flag)"
                " FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(_READING_TYPES)
                for r in rows:
                    copy.write_row(r)
            cur.execute(
                "SELECT s.device_id, s.metric, s.time, r.value FROM readings_stage s"
                " JOIN readings r USING (device_id, metric, time)"
            )
            stored = {(d, m, t): v for d, m, t, v in cur.fetchall()}
            cur.execute(
                "INSERT INTO readings (time, device_id, metric, value, flag)"
                " SELECT time, device_id, metric, value, flag FROM readings_stage"
                " ON CONFLICT (device_id, metric, time) DO NOTHING"
            )
        fresh: list[Reading] = []
        for r in rows:
            kept = stored.get((r.device_id, r.metric, r.time))
            if kept is None:
                fresh.append(r)
            elif kept == r.value:
                out.duplicates += 1
                out.repeated.append(r)
            else:
                out.conflicts += 1
                out.dead_letters.append(_conflict_letter(envelope_of[r], r, kept))
        out.written = len(fresh)
        out.committed = fresh

    def _write_dead_letters(
        self, conn: psycopg.Connection[Any], letters: Iterable[DeadLetter]
    ) -> None:
        deadletters.store(
            conn,
            (
                StoredLetter(d.topic, d.device_id, d.reason.value, d.detail, d.payload)
                for d in letters
            ),
            self.settings.dead_letter_payload_bytes,
        )

    def _touch_devices(self, conn: psycopg.Connection[Any], batch: Sequence[Envelope]) -> None:
        now_m = time.monotonic()
        seen: dict[str, datetime] = {}
        for env in batch:
            if env.device_id is None or (not env.readings and env.status is None):
                continue
            last = self._last_seen_written.get(env.device_id)
            if last is None or now_m - last >= LAST_SEEN_EVERY_S:
                seen[env.device_id] = env.received_at
        if not seen:
            return
        ids = sorted(seen)  # a fixed order keeps two writers from deadlocking
        conn.execute(
            "INSERT INTO devices (device_id, first_seen, last_seen)"
            " SELECT d, t, t FROM unnest(%s::text[], %s::timestamptz[]) AS u(d, t)"
            " ON CONFLICT (device_id) DO UPDATE"
            " SET last_seen = greatest(devices.last_seen, excluded.last_seen)",
            (ids, [seen[d] for d in ids]),
        )
        for d in ids:
            self._last_seen_written[d] = now_m

    def forget_last_seen(self) -> None:
        """After a failed commit the cache may claim writes that were rolled back."""
        self._last_seen_written.clear()

    def _apply_statuses(
        self, conn: psycopg.Connection[Any], batch: Sequence[Envelope]
    ) -> list[DeviceStatus]:
        changed: list[DeviceStatus] = []
        for env in batch:
            s = env.status
            if s is None:
                continue
            row = conn.execute(
                "UPDATE devices SET online = %s, status_changed_at = %s"
                " WHERE device_id = %s AND online IS DISTINCT FROM %s RETURNING 1",
                (s.online, s.time, s.device_id, s.online),
            ).fetchone()
            if row is not None:
                changed.append(s)
        return changed


class WriterLoop:
    """The writer thread: drains the queue into batches, commits, acknowledges, hands on.

    Queue policy: the queue is bounded (`queue_max_messages`). When it is full the MQTT
    thread blocks in put(), stops reading from the broker and stops acknowledging; the
    broker holds the rest in our persistent session. Nothing is dropped here.
    """

    def __init__(
        self,
        settings: IngestSettings,
        conninfo: str,
        metrics: IngestMetrics,
        acker: Acker,
        reading_sinks: Sequence[ReadingSink] = (),
        status_sinks: Sequence[StatusSink] = (),
        supervisor: Supervisor | None = None,
        relay: RelaySink | None = None,
    ) -> None:
        self.settings = settings
        self.conninfo = conninfo
        self.supervisor = supervisor or Supervisor()
        self.metrics = metrics
        self.acker = acker
        self.reading_sinks = list(reading_sinks)
        self.status_sinks = list(status_sinks)
        self.relay = relay
        self.queue: queue.Queue[Envelope] = queue.Queue(settings.queue_max_messages)
        self.writer = BatchWriter(settings, metrics)
        # Optimistic until a commit fails: readiness also pings the database itself.
        self.db_up = True
        self._stop = threading.Event()
        self._worker: Supervised | None = None
        # A batch taken from the queue and not committed yet: kept across a restart of the
        # loop, so a bug that escapes a turn loses nothing (its messages stay unacknowledged).
        self._pending: list[Envelope] | None = None
        self._conn: psycopg.Connection[Any] | None = None
        metrics.queue_capacity.set(settings.queue_max_messages)
        metrics.queue_depth.set_function(self.queue.qsize)

    def start(self) -> None:
        self._stop.clear()
        self._worker = self.supervisor.start("ingest-writer", self._step)

    def stop(self, timeout: float = 30.0) -> bool:
        """Finish what is queued (while the database answers), then stop; False when the
        thread did not end within `timeout`."""
        self._stop.set()
        stopped = True
        if self._worker is not None:
            stopped = self._worker.join(timeout)
            if stopped:
                self.supervisor.forget(self._worker)
        if self._conn is not None:
            self._conn.close()
        return stopped

    def put(self, env: Envelope, stopping: threading.Event) -> bool:
        """Blocking put for the MQTT thread; False when shutting down (message not acked)."""
        try:
            self.queue.put_nowait(env)  # the common case, without a timed wait's set-up
            return True
        except queue.Full:
            pass
        while not stopping.is_set():
            try:
                self.queue.put(env, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(self.conninfo, connect_timeout=5)
        return self._conn

    def _collect(self) -> list[Envelope]:
        try:
            first = self.queue.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        count = len(first.readings)
        deadline = time.monotonic() + self.settings.batch_max_wait_ms / 1000
        limit = self.settings.batch_max_readings
        while count < limit:
            try:
                env = self.queue.get_nowait()
            except queue.Empty:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    env = self.queue.get(timeout=left)
                except queue.Empty:
                    break
            batch.append(env)
            count += len(env.readings)
        return batch

    def _step(self) -> bool:
        """One turn of the writer thread; False once stopping with nothing left."""
        batch = self._pending or self._collect()
        if not batch:
            return not self._stop.is_set()
        self._pending = batch
        self._commit_with_retry(batch)
        return True

    def _commit_with_retry(self, batch: list[Envelope]) -> None:
        delay = self.settings.retry_min_s
        while True:
            started = time.perf_counter()
            try:
                conn = self._connection()
                outcome = self.writer.write(conn, batch)
            except psycopg.Error as err:
                self.metrics.write_errors.inc()
                self.writer.forget_last_seen()
                if self.db_up or delay == self.settings.retry_min_s:
                    log.warning("batch of %d messages not committed, retrying: %s", len(batch), err)
                self.db_up = False
                self.metrics.db_up.set(0)
                if isinstance(err, psycopg.OperationalError) and self._conn is not None:
                    self._conn.close()
                if self._stop.wait(delay):
                    # Shutting down while the database is away: unacknowledged messages
                    # stay in the broker's session, so giving up here loses nothing.
                    log.error(
                        "stopping with %d unacknowledged messages; the broker keeps them",
                        len(batch),
                    )
                    self._pending = None
                    return
                delay = min(delay * 2, self.settings.retry_max_s)
                continue
            break
        self._pending = None  # committed: what follows must not write it again
        elapsed = time.perf_counter() - started
        if not self.db_up:
            log.info("database reachable again; writing")
        self.db_up = True
        self.metrics.db_up.set(1)
        relayed = [env for env in batch if env.relay and env.readings] if self.relay else []
        self._acknowledge([env for env in batch if not (env.relay and env.readings)]
                          if relayed else batch)  # fmt: skip
        self._account(batch, outcome, elapsed)
        # The rows are committed and acknowledged: a sink's failure is its own, never the
        # writer's, and the other sinks still get their hand-off.
        if outcome.committed:
            for sink in self.reading_sinks:
                try:
                    sink.readings_committed(outcome.committed)
                except Exception:
                    self._sink_failed(sink)
        if relayed and self.relay is not None:
            self._relay(self.relay, relayed, *_relayed(batch, outcome))
        for status in outcome.statuses:
            for ssink in self.status_sinks:
                try:
                    ssink.status_changed(status)
                except Exception:
                    self._sink_failed(ssink)

    def _acknowledge(self, envelopes: Sequence[Envelope]) -> None:
        mids: list[int] = []
        for env in envelopes:
            if env.on_commit is not None:
                env.on_commit()
            elif env.qos > 0:
                mids.append(env.mid)
        if mids:
            self.acker.ack_committed(mids)

    def _relay(
        self,
        relay: RelaySink,
        envelopes: list[Envelope],
        fresh: list[Reading],
        resent: list[Reading],
    ) -> None:
        """The relay envelopes are acknowledged once the relay has their readings: a process
        that dies before leaves them unacknowledged, to come again (and be relayed again)."""
        try:
            relay.relay(fresh, resent, lambda: self._acknowledge(envelopes))
        except Exception:
            # Not relayed: acknowledged anyway, or every later packet would wait on these
            # (the readings are stored; the engine misses them, and says nothing else).
            self._sink_failed(relay)
            self._acknowledge(envelopes)

    def _sink_failed(self, sink: object) -> None:
        self.metrics.sink_errors.inc()
        log.exception("sink %r failed on committed data; the writer goes on", sink)

    def _account(self, batch: Sequence[Envelope], outcome: BatchOutcome, elapsed: float) -> None:
        m = self.metrics
        m.commit_seconds.observe(elapsed)
        m.batch_rows.observe(outcome.written)
        m.readings_written.inc(outcome.written)
        if outcome.duplicates:
            m.duplicates.inc(outcome.duplicates)
        if outcome.conflicts:
            m.conflicts.inc(outcome.conflicts)
        for d in outcome.dead_letters:
            m.dead_letters.labels(d.reason.value).inc()
        now = datetime.now(UTC)
        results: dict[str, int] = {}
        for env in batch:
            if env.status is not None:
                result = "status"
            elif env.readings and env.dead_letters:
                result = "partial"
            elif env.readings:
                result = "stored"
            else:
                result = "rejected"
            results[result] = results.get(result, 0) + 1
            if env.readings:
                m.lag.observe(max(0.0, (now - env.readings[0].time).total_seconds()))
        for result, n in results.items():  # one labelled increment per batch, not per message
            m.messages.labels(result).inc(n)
