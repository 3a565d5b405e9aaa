"""Publish through a real Mosquitto into a real PostgreSQL: rows, dead letters, redelivery."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from ingest.topics import status_topic, telemetry_topic
from offsite.app import OffsiteApp
from offsite.embedded import EmbeddedBroker
from tests.helpers import Publisher, wait_until


@pytest.fixture
def app(make_settings: Callable[..., Any]) -> Iterator[OffsiteApp]:
    with OffsiteApp(make_settings()) as running:
        wait_until(lambda: running.readiness()["broker"], what="broker connection")
        yield running


@pytest.fixture
def pub(broker: EmbeddedBroker) -> Iterator[Publisher]:
    p = Publisher(broker.port)
    yield p
    p.close()


def now_ms() -> int:
    return int(time.time() * 1000)


def count(db: psycopg.Connection[Any], sql: str, *args: object) -> int:
    row = db.execute(sql, args).fetchone()
    assert row is not None
    return int(row[0])


def dev(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_publish_stores_rows_and_registers_device(
    app: OffsiteApp, pub: Publisher, db: psycopg.Connection[Any]
) -> None:
    d = dev("aq")
    t = now_ms()
    pub.publish(telemetry_topic(d), f'{{"ts": {t}, "values": {{"pm25": 35.2, "pm10": 80}}}}')
    pub.publish(
        telemetry_topic(d),
        f'[{{"ts": {t - 2000}, "values": {{"pm25": 30}}}},'
        f' {{"ts": {t - 1000}, "values": {{"pm25": 31}}}}]',
    )
    pub.publish(telemetry_topic(d), '{"so2": 7}')
    pub.publish(status_topic(d), "online")
    wait_until(
        lambda: count(db, "SELECT count(*) FROM readings WHERE device_id = %s", d) == 5,
        what="5 readings",
    )
    rows = db.execute(
        "SELECT metric, value FROM readings WHERE device_id = %s AND time = %s ORDER BY metric",
        (d, datetime.fromtimestamp(t / 1000, tz=UTC)),
    ).fetchall()
    assert rows == [("pm10", 80.0), ("pm25", 35.2)]
    wait_until(
        lambda: (
            db.execute("SELECT online FROM devices WHERE device_id = %s", (d,)).fetchone()
            == (True,)
        ),
        what="device online",
    )
    pub.publish(status_topic(d), "offline")
    wait_until(
        lambda: (
            db.execute("SELECT online FROM devices WHERE device_id = %s", (d,)).fetchone()
            == (False,)
        ),
        what="device offline",
    )


def test_redelivery_stores_once_and_conflict_keeps_first_value(
    app: OffsiteApp, pub: Publisher, db: psycopg.Connection[Any]
) -> None:
    d = dev("ww")
    t = now_ms()
    payload = f'{{"ts": {t}, "values": {{"cod": 41.5}}}}'
    for _ in range(3):
        pub.publish(telemetry_topic(d), payload)
    pub.wait_acked(3)
    wait_until(lambda: app.ingest is not None and _written(app) >= 1, what="first write")
    pub.publish(telemetry_topic(d), f'{{"ts": {t}, "values": {{"cod": 99}}}}')
    wait_until(
        lambda: count(db, "SELECT count(*) FROM dead_letters WHERE device_id = %s", d) == 1,
        what="conflict dead letter",
    )
    assert count(db, "SELECT count(*) FROM readings WHERE device_id = %s", d) == 1
    assert db.execute("SELECT value FROM readings WHERE device_id = %s", (d,)).fetchone() == (41.5,)
    reason, detail = db.execute(
        "SELECT reason, detail FROM dead_letters WHERE device_id = %s", (d,)
    ).fetchone() or ("", "")
    assert reason == "conflict"
    assert "already stored as 41.5" in detail
    assert "99" in detail


def _written(app: OffsiteApp) -> float:
    value = app.registry.get_sample_value("offsite_ingest_readings_written_total")
    return value or 0.0


BAD_MESSAGES = [
    ("telemetry", b"{not json", "not_json"),
    ("telemetry", b"[1]", "wrong_shape"),
    ("telemetry", b'{"pm25": "high"}', "non_numeric"),
    ("telemetry", b'{"pm25": NaN}', "not_finite"),
    ("telemetry", b'{"pm 25": 1}', "bad_metric"),
    ("telemetry", b'{"ts": 99999999999999, "values": {"a": 1}}', "future_ts"),
    ("telemetry", b'{"ts": 1000, "values": {"a": 1}}', "too_old"),
    ("telemetry", b'{"ts": "noon", "values": {"a": 1}}', "bad_ts"),
    ("telemetry", b'{"a": "' + b"x" * 300_000 + b'"}', "too_large"),
    ("status", b"maybe", "bad_status"),
    ("commands", b"{}", "unknown_topic"),
]


def test_every_bad_input_is_dead_lettered_with_its_reason(
    app: OffsiteApp, pub: Publisher, db: psycopg.Connection[Any]
) -> None:
    d = dev("bad")
    for channel, payload, _ in BAD_MESSAGES:
        pub.publish(f"offsite/v1/devices/{d}/{channel}", payload)
    pub.publish("offsite/v1/devices/bad id!/telemetry", b'{"a": 1}')
    wait_until(
        lambda: (
            count(db, "SELECT count(*) FROM dead_letters WHERE topic LIKE %s", f"%{d}%")
            == len(BAD_MESSAGES)
        ),
        what="one dead letter per bad message",
    )
    got = dict(
        db.execute(
            "SELECT reason, payload_size FROM dead_letters WHERE device_id = %s", (d,)
        ).fetchall()
    )
    assert set(got) == {reason for _, _, reason in BAD_MESSAGES}
    assert got["too_large"] > 300_000  # the size is recorded even though the payload is capped
    stored = db.execute(
        "SELECT length(payload) FROM dead_letters WHERE reason = 'too_large' AND device_id = %s",
        (d,),
    ).fetchone()
    assert stored is not None
    assert stored[0] <= 8192
    wait_until(
        lambda: count(db, "SELECT count(*) FROM dead_letters WHERE topic LIKE '%%bad id!%%'") == 1,
        what="bad device id dead letter",
    )
    assert count(db, "SELECT count(*) FROM readings WHERE device_id = %s", d) == 0
    assert (
        app.registry.get_sample_value("offsite_ingest_dead_letters_total", {"reason": "not_json"})
        or 0
    ) >= 1


def test_flood_of_malformed_messages_does_not_stop_valid_ones(
    app: OffsiteApp, pub: Publisher, db: psycopg.Connection[Any]
) -> None:
    good, bad = dev("good"), dev("junk")
    t = now_ms()
    for i in range(3000):
        pub.publish(telemetry_topic(bad), b"\x00\x01garbage" if i % 2 else b'{"x": [1]}')
        if i % 10 == 0:
            pub.publish(telemetry_topic(good), f'{{"ts": {t - i}, "values": {{"v": {i}}}}}')
    wait_until(
        lambda: count(db, "SELECT count(*) FROM readings WHERE device_id = %s", good) == 300,
        timeout=60,
        what="all 300 valid readings",
    )
    wait_until(
        lambda: count(db, "SELECT count(*) FROM dead_letters WHERE device_id = %s", bad) == 3000,
        timeout=60,
        what="all 3000 malformed messages dead-lettered",
    )


class Stream:
    """Publishes `n` messages of `per` readings at `rate`/s from a thread."""

    def __init__(self, pub: Publisher, device: str, n: int, per: int, rate: float) -> None:
        self.pub, self.device, self.n, self.per, self.rate = pub, device, n, per, rate
        self.base = now_ms() - 60_000
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        for i in range(self.n):
            values = ", ".join(f'"m{k}": {i + k}' for k in range(self.per))
            self.pub.publish(
                telemetry_topic(self.device), f'{{"ts": {self.base + i}, "values": {{{values}}}}}'
            )
            delay = start + (i + 1) / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def start(self) -> Stream:
        self.thread.start()
        return self

    def join(self) -> None:
        self.thread.join()
        self.pub.wait_acked(self.n, timeout=60)


def test_a_topic_with_an_extra_level_is_an_unknown_topic_dead_letter(
    app: OffsiteApp, pub: Publisher, db: psycopg.Connection[Any]
) -> None:
    d = dev("extra")
    pub.publish(telemetry_topic(d) + "/v2", '{"pm25": 1}')
    pub.publish(f"offsite/v1/devices/{d}", '{"pm25": 2}')
    wait_until(
        lambda: (
            count(
                db,
                "SELECT count(*) FROM dead_letters"
                " WHERE device_id = %s AND reason = 'unknown_topic'",
                d,
            )
            == 2
        ),
        what="two unknown_topic dead letters",
    )
    assert count(db, "SELECT count(*) FROM readings WHERE device_id = %s", d) == 0


def test_retained_bare_telemetry_is_not_stored_again_on_reconnect(
    make_settings: Callable[..., Any], pub: Publisher, db: psycopg.Connection[Any]
) -> None:
    d = dev("retained")
    settings = make_settings()
    with OffsiteApp(settings) as first:
        wait_until(lambda: first.readiness()["broker"], what="broker connection")
        pub.publish(telemetry_topic(d), '{"pm25": 35}', retain=True)
        wait_until(
            lambda: count(db, "SELECT count(*) FROM readings WHERE device_id = %s", d) == 1,
            what="the live copy stored",
        )
    try:
        # Same client id: the broker replays the retained message on the new subscribe.
        with OffsiteApp(settings) as second:
            wait_until(
                lambda: (
                    (
                        second.registry.get_sample_value(
                            "offsite_ingest_retained_telemetry_ignored_total"
                        )
                        or 0
                    )
                    >= 1
                ),
                what="the replayed retained message ignored",
            )
        assert count(db, "SELECT count(*) FROM readings WHERE device_id = %s", d) == 1
    finally:
        pub.publish(telemetry_topic(d), b"", retain=True)  # clears the retained message
