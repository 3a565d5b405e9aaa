"""The HJ 212 gateway end to end through OffsiteApp: TCP loggers, replies after commit, MQTT."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from hj212.packet import encode
from hj212.registry import register
from hj212.simlogger import Logger, data_packet, data_time
from ingest.topics import hj212_topic
from offsite.app import OffsiteApp
from offsite.embedded import EmbeddedBroker
from tests.helpers import Publisher, wait_until


@pytest.fixture
def app(make_settings: Callable[..., Any]) -> Iterator[OffsiteApp]:
    with OffsiteApp(make_settings()) as running:
        yield running


def mn() -> str:
    return f"LOG{uuid.uuid4().hex[:12].upper()}"


def rows(db: psycopg.Connection[Any], device: str) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT metric, value, flag, time FROM readings WHERE device_id = %s ORDER BY metric",
        (device,),
    ).fetchall()


def letters(db: psycopg.Connection[Any], device: str | None = None) -> list[tuple[str, str]]:
    return db.execute(
        "SELECT reason, detail FROM dead_letters"
        " WHERE %(d)s::text IS NULL OR device_id = %(d)s ORDER BY id",
        {"d": device},
    ).fetchall()


def minute(t: datetime) -> datetime:
    return t.replace(second=0, microsecond=0)


def test_logger_uploads_become_rows_with_flags_and_replies_follow_the_commit(
    app: OffsiteApp, db: psycopg.Connection[Any]
) -> None:
    assert app.hj212 is not None
    device = mn()
    now = minute(datetime.now(UTC))
    uploads = [
        data_packet(device, "2011", now, {"w01018": (88.5, "C"), "w21003": 2.5}),
        data_packet(device, "2051", now - timedelta(minutes=1), {"w01018": 40.0}),
        data_packet(device, "2061", now.replace(minute=0), {"w01018": (41.0, "M")}),
        data_packet(
            device, "2031", now.replace(hour=0, minute=0) - timedelta(days=1), {"w01018": 39.0}
        ),
    ]
    seen_at_reply: list[int] = []

    async def run() -> None:
        logger = Logger("127.0.0.1", app.hj212.port)  # type: ignore[union-attr]
        await logger.connect()
        for qn, frame in uploads:
            assert await logger.send_and_wait(qn, frame, timeout=20)
            # The reply is written from the commit callback: the rows are there already.
            seen_at_reply.append(len(rows(db, device)))
        await logger.close()

    asyncio.run(run())
    assert seen_at_reply == [2, 3, 4, 5]
    got = {(m, v, f) for m, v, f, _ in rows(db, device)}
    assert got == {
        ("w01018", 88.5, "C"),
        ("w21003", 2.5, "N"),
        ("w01018.avg_minute", 40.0, "N"),
        ("w01018.avg_hour", 41.0, "M"),
        ("w01018.avg_day", 39.0, "N"),
    }
    assert db.execute("SELECT kind FROM devices WHERE device_id = %s", (device,)).fetchone() == (
        "hj212",
    )


def test_bad_packets_are_dead_letters_and_the_connection_stays_up(
    app: OffsiteApp, db: psycopg.Connection[Any]
) -> None:
    assert app.hj212 is not None
    device = mn()
    now = minute(datetime.now(UTC))
    register(db, device, "secret1", "test")
    _, good = data_packet(device, "2011", now, {"w01018": 1.0}, pw="secret1")
    bad_crc = good[:-6] + (b"0000" if not good.endswith(b"0000\r\n") else b"1111") + b"\r\n"
    qn_pw, wrong_pw = data_packet(device, "2011", now, {"w01018": 2.0}, pw="guess")
    qn_ok, ok = data_packet(
        device, "2011", now + timedelta(minutes=1), {"w01018": 3.0}, pw="secret1"
    )

    async def run() -> None:
        logger = Logger("127.0.0.1", app.hj212.port)  # type: ignore[union-attr]
        await logger.connect()
        await logger.send("crc", bad_crc)
        await logger.send("noise", b"not a packet\r\n")
        await logger.send(qn_pw, wrong_pw)
        # Still connected: the next good packet is stored and answered.
        assert await logger.send_and_wait(qn_ok, ok, timeout=20)
        assert set(logger.replies) == {qn_ok}
        await logger.close()

    asyncio.run(run())
    assert [(m, v) for m, v, _, _ in rows(db, device)] == [("w01018", 3.0)]
    got = wait_until(lambda: letters(db) if len(letters(db)) >= 3 else None, what="3 dead letters")
    reasons = [r for r, _ in got]
    assert reasons == ["bad_crc", "bad_frame", "bad_password"]
    stored = db.execute(
        "SELECT payload, payload_size FROM dead_letters WHERE reason = 'bad_password'"
    ).fetchone()
    assert stored == (wrong_pw, len(wrong_pw))


def test_a_password_changed_with_the_cli_holds_from_the_next_packet(
    app: OffsiteApp, db: psycopg.Connection[Any]
) -> None:
    # The gateway remembers a PW it verified; a change must still take effect at once:
    # the new PW is taken on its first packet and the old one refused from then on.
    assert app.hj212 is not None
    device = mn()
    now = minute(datetime.now(UTC))
    register(db, device, "old-pw", "test")
    qn0, p0 = data_packet(device, "2011", now - timedelta(minutes=1), {"w01018": 0.5}, pw="old-pw")
    qn1, p1 = data_packet(device, "2011", now, {"w01018": 1.0}, pw="old-pw")
    qn2, p2 = data_packet(device, "2011", now + timedelta(minutes=1), {"w01018": 2.0}, pw="new-pw")
    qn3, p3 = data_packet(device, "2011", now + timedelta(minutes=2), {"w01018": 3.0}, pw="old-pw")

    async def run() -> None:
        logger = Logger("127.0.0.1", app.hj212.port)  # type: ignore[union-attr]
        await logger.connect()
        assert await logger.send_and_wait(qn0, p0, timeout=20)
        assert await logger.send_and_wait(qn1, p1, timeout=20)  # the remembered PW
        register(db, device, "new-pw", "test")
        assert await logger.send_and_wait(qn2, p2, timeout=20)
        assert not await logger.send_and_wait(qn3, p3, timeout=1)
        await logger.close()

    asyncio.run(run())
    assert sorted(v for _, v, _, _ in rows(db, device)) == [0.5, 1.0, 2.0]
    got = wait_until(lambda: letters(db, device), what="the refused old password")
    assert [r for r, _ in got] == ["bad_password"]


def test_registration_required_refuses_unknown_mn_until_registered(
    make_settings: Callable[..., Any], db: psycopg.Connection[Any]
) -> None:
    device = mn()
    now = minute(datetime.now(UTC))
    with OffsiteApp(make_settings(hj212={"require_registration": True})) as app:
        assert app.hj212 is not None
        port = app.hj212.port
        qn1, p1 = data_packet(device, "2011", now, {"w01018": 1.0})
        qn2, p2 = data_packet(device, "2011", now + timedelta(minutes=1), {"w01018": 2.0})

        async def first() -> None:
            logger = Logger("127.0.0.1", port)
            await logger.connect()
            await logger.send(qn1, p1)
            await logger.close()

        asyncio.run(first())
        got = wait_until(lambda: letters(db, device), what="a dead letter")
        assert got[0][0] == "unknown_device"
        assert "offsite hj212 register" in got[0][1]
        register(db, device, "123456", "test")

        async def second() -> None:
            logger = Logger("127.0.0.1", port)
            await logger.connect()
            assert await logger.send_and_wait(qn2, p2, timeout=20)
            await logger.close()

        asyncio.run(second())
    assert [(m, v) for m, v, _, _ in rows(db, device)] == [("w01018", 2.0)]


def test_unknown_mn_registers_itself_with_its_first_password(
    app: OffsiteApp, db: psycopg.Connection[Any]
) -> None:
    assert app.hj212 is not None
    device = mn()
    now = minute(datetime.now(UTC))
    qn1, p1 = data_packet(device, "2011", now, {"w01018": 1.0}, pw="first")
    qn2, p2 = data_packet(device, "2011", now + timedelta(minutes=1), {"w01018": 2.0}, pw="other")

    async def run() -> None:
        logger = Logger("127.0.0.1", app.hj212.port)  # type: ignore[union-attr]
        await logger.connect()
        assert await logger.send_and_wait(qn1, p1, timeout=20)
        assert not await logger.send_and_wait(qn2, p2, timeout=1)
        await logger.close()

    asyncio.run(run())
    assert db.execute(
        "SELECT registered_by FROM hj212_loggers WHERE mn = %s", (device,)
    ).fetchone() == ("first packet",)
    assert wait_until(lambda: letters(db, device))[0][0] == "bad_password"


def test_wrong_length_field_with_right_crc_is_stored_and_counted(
    app: OffsiteApp, db: psycopg.Connection[Any]
) -> None:
    assert app.hj212 is not None
    device = mn()
    qn, right = data_packet(device, "2011", minute(datetime.now(UTC)), {"w01018": 7.0})
    wrong = b"##%04d" % (int(right[2:6]) + 1) + right[6:]

    async def run() -> None:
        logger = Logger("127.0.0.1", app.hj212.port)  # type: ignore[union-attr]
        await logger.connect()
        assert await logger.send_and_wait(qn, wrong, timeout=20)
        await logger.close()

    asyncio.run(run())
    assert [(m, v) for m, v, _, _ in rows(db, device)] == [("w01018", 7.0)]
    assert app.registry.get_sample_value("offsite_hj212_length_mismatch_total") == 1.0


def test_split_packet_over_tcp_is_stored_once_whole(
    app: OffsiteApp, db: psycopg.Connection[Any]
) -> None:
    assert app.hj212 is not None
    device = mn()
    dt = data_time(minute(datetime.now(UTC)).replace(minute=0))
    head = f"QN=20260101000000001;ST=32;CN=2061;PW=123456;MN={device};Flag=7;PNUM=2;"
    pieces = [
        encode(f"{head}PNO=1;CP=&&DataTime={dt};w01018-Avg=40,w01018-Flag=N&&"),
        encode(f"{head}PNO=2;CP=&&DataTime={dt};w21003-Avg=2,w21003-Flag=D&&"),
    ]

    async def run() -> None:
        logger = Logger("127.0.0.1", app.hj212.port)  # type: ignore[union-attr]
        await logger.connect()
        await logger.send("p1", pieces[0])
        assert await logger.send_and_wait("20260101000000001", pieces[1], timeout=20)
        await logger.close()

    asyncio.run(run())
    assert {(m, v, f) for m, v, f, _ in rows(db, device)} == {
        ("w01018.avg_hour", 40.0, "N"),
        ("w21003.avg_hour", 2.0, "D"),
    }


def test_packets_over_mqtt_are_stored_and_acknowledged_after_commit(
    app: OffsiteApp, broker: EmbeddedBroker, db: psycopg.Connection[Any]
) -> None:
    device = mn()
    now = minute(datetime.now(UTC))
    _, good = data_packet(device, "2011", now, {"w01018": (55.0, "T")})
    _, other = data_packet(mn(), "2011", now, {"w01018": 1.0})
    pub = Publisher(broker.port)
    try:
        wait_until(lambda: app.readiness()["broker"], what="broker connection")
        pub.publish(hj212_topic(device), good)
        pub.publish(hj212_topic(device), other)  # MN is not the topic's device
        pub.wait_acked(2)
    finally:
        pub.close()
    got = wait_until(lambda: rows(db, device), what="rows")
    assert [(m, v, f) for m, v, f, _ in got] == [("w01018", 55.0, "T")]
    got_letters = wait_until(lambda: letters(db, device), what="a dead letter")
    assert got_letters[0][0] == "bad_device_id"


def test_a_thousand_connections_do_not_stall_one_another(
    app: OffsiteApp, db: psycopg.Connection[Any]
) -> None:
    assert app.hj212 is not None
    port = app.hj212.port
    now = minute(datetime.now(UTC))
    devices = [mn() for _ in range(1000)]

    async def run() -> None:
        # A logger that sends half a frame and goes quiet holds nobody up.
        stuck = Logger("127.0.0.1", port)
        await stuck.connect()
        _, frame = data_packet(mn(), "2011", now, {"w01018": 1.0})
        await stuck.send("half", frame[: len(frame) // 2])
        loggers = [Logger("127.0.0.1", port) for _ in devices]
        await asyncio.gather(*(lg.connect() for lg in loggers))
        assert app.hj212 is not None
        assert app.hj212.gateway is not None
        wait_open = asyncio.get_running_loop().time() + 30
        while app.hj212.gateway.connections < 1001:
            assert asyncio.get_running_loop().time() < wait_open, "connections not accepted"
            await asyncio.sleep(0.05)

        async def one(lg: Logger, device: str) -> bool:
            qn, p = data_packet(device, "2011", now, {"w01018": 5.0, "w21003": 1.0})
            for _ in range(3):
                if await lg.send_and_wait(qn, p, timeout=30):
                    return True
            return False

        answered = await asyncio.gather(
            *(one(lg, d) for lg, d in zip(loggers, devices, strict=True))
        )
        assert all(answered)
        await asyncio.gather(*(lg.close() for lg in loggers))
        await stuck.close()

    asyncio.run(run())
    stored = db.execute(
        "SELECT count(*), count(DISTINCT device_id) FROM readings WHERE device_id = ANY(%s)",
        (devices,),
    ).fetchone()
    assert stored == (2000, 1000)


# Stopping the loop under the gateway leaves its server and sockets unclosed, on purpose.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_readiness_reports_the_gateway_and_its_loop_stopping(app: OffsiteApp) -> None:
    assert app.hj212 is not None
    assert app.readiness()["hj212"] is True
    loop = app.hj212._loop
    assert loop is not None
    loop.call_soon_threadsafe(loop.stop)  # the event loop ends as if its thread had died
    wait_until(lambda: app.readiness()["hj212"] is False, timeout=10, what="hj212 not ready")
