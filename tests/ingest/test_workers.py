"""Ingest in child processes: N MQTT clients in one $share group, supervised, losing nothing."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.mqttclient import BufferedClient
from ingest.topics import telemetry_topic
from offsite.app import OffsiteApp
from offsite.embedded import EmbeddedBroker
from offsite.settings import ConfigError
from roles.plan import Role, parse_roles, plan
from tests.helpers import Publisher, wait_until
from tests.ingest.test_pipeline import count, now_ms


def _per_worker_written(app: OffsiteApp) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in app.registry.collect():
        for s in family.samples:
            if s.name == "offsite_ingest_readings_written_total":
                out[s.labels["worker"]] = s.value
    return out


def test_two_workers_store_every_acked_reading_once_through_a_sigkill(
    make_settings: Any, broker: EmbeddedBroker, db: psycopg.Connection[Any]
) -> None:
    settings = make_settings(roles="ingest", ingest={"workers": 2})
    device = f"wk-{os.getpid()}"
    total = 6000
    with OffsiteApp(settings) as app:
        assert app.parts.ingest_workers == 2
        ingest = app.ingest
        assert ingest is not None
        assert ingest.workers is not None
        wait_until(lambda: app.readiness()["broker"], timeout=60, what="both workers connected")
        checks = app.readiness()
        assert checks["ingest-worker-1"]
        assert checks["ingest-worker-2"]

        pub = Publisher(broker.port)
        t0 = now_ms() - total
        done = threading.Event()

        def stream() -> None:
            # A steady stream, so the kill lands while messages are in flight.
            for i in range(total):
                pub.publish(telemetry_topic(f"{device}-{i % 20}"),
                            f'{{"ts": {t0 + i}, "values": {{"v": {i}}}}}')  # fmt: skip
                if i % 100 == 99:
                    time.sleep(0.02)
            done.set()

        sender = threading.Thread(target=stream, daemon=True)
        sender.start()
        wait_until(lambda: count(db, "SELECT count(*) FROM readings WHERE device_id LIKE %s",
                                 f"{device}-%") > 1000, what="the stream flowing")  # fmt: skip
        victim = ingest.workers.pids()[0]
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: not app.readiness()["ingest-worker-1"], what="the kill seen")
        wait_until(
            lambda: app.registry.get_sample_value("offsite_ingest_worker_restarts_total") == 1,
            what="the dead worker restarted",
        )
        wait_until(lambda: app.readiness()["ingest-worker-1"], timeout=60, what="it reconnected")
        assert ingest.workers.pids()[0] != victim
        sender.join(120)
        assert done.is_set()
        pub.wait_acked(total, timeout=60)
        wait_until(
            lambda: count(db, "SELECT count(*) FROM readings WHERE device_id LIKE %s",
                          f"{device}-%") >= total,
            timeout=90,
            what=f"{total} readings",
        )  # fmt: skip
        pub.close()
        # Both took a share of the stream (the restarted one's counter starts again at 0,
        # so the survivor's share is the check).
        assert _per_worker_written(app).get("2", 0) > 0
    rows = db.execute(
        "SELECT count(*), count(DISTINCT (device_id, metric, time)), count(DISTINCT value)"
        " FROM readings WHERE device_id LIKE %s",
        (f"{device}-%",),
    ).fetchone()
    assert rows == (total, total, total)


def test_roles_decide_what_starts(make_settings: Any) -> None:
    assert parse_roles([]) == frozenset(Role)
    assert parse_roles(["ingest,engine", "api"]) == {Role.INGEST, Role.ENGINE, Role.API}
    with pytest.raises(ValueError, match="unknown role 'rules'"):
        parse_roles(["rules"])
    everything = plan(frozenset(Role), 1)
    assert everything.readings_in_process
    assert everything.ingest_workers == 0
    # While the engine takes readings from the writer here, auto keeps one process with it.
    assert plan(frozenset(Role), "auto").ingest_workers == 0
    alone = plan(frozenset({Role.INGEST}), "auto")
    assert alone.ingest_workers == ((os.cpu_count() or 1) if (os.cpu_count() or 1) > 1 else 0)
    assert not alone.readings_in_process
    assert not plan(frozenset({Role.INGEST, Role.ENGINE}), 3).readings_in_process

    settings = make_settings(roles="api")
    with OffsiteApp(settings) as app:
        # No ingest here: no broker session to be ready for, no intake, no rules engine.
        assert app.ingest is None
        checks = app.readiness()
        assert "broker" not in checks
        assert not any(name.startswith("worker:rules") for name in checks)
        assert all(checks.values()), checks


def test_a_video_role_without_the_intake_needs_camera_leases(make_settings: Any) -> None:
    # Frames would be acknowledged and skipped by ingest elsewhere; refuse rather than idle.
    with pytest.raises(ConfigError, match=r"video\.partition: leases"):
        OffsiteApp(make_settings(roles="video"))
    with pytest.raises(ConfigError, match=r"ingest\.workers > 1"):
        OffsiteApp(make_settings(ingest={"workers": 2}))


def test_the_buffered_reader_acks_and_keeps_alive_while_its_buffer_never_runs_dry(
    broker: EmbeddedBroker,
) -> None:
    """BufferedClient parses many packets per socket read. When the broker sends faster than
    the client parses (a queue replayed on reconnect, a steady stream), the buffer never runs
    dry and paho's loop is not reached: the client must still send its PUBACKs and keep the
    keepalive from inside the read (a first version did neither: the broker dropped it after
    1.5 x keepalive and redelivered everything)."""
    cid = f"buf-{os.getpid()}-{time.monotonic_ns()}"
    topic = f"buf/{cid}"
    got: list[bool] = []
    drops: list[object] = []

    def connect() -> BufferedClient:
        c = BufferedClient(CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5,
                           manual_ack=True)  # fmt: skip
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 600

        def on_message(client: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
            got.append(bool(msg.dup))
            client.ack(msg.mid, msg.qos)

        c.on_message = on_message
        c.on_disconnect = lambda *a: drops.append(a[3])
        up = threading.Event()
        c.on_connect = lambda *a: up.set()
        c.connect("127.0.0.1", broker.port, keepalive=1, clean_start=False, properties=props)
        c.loop_start()
        assert up.wait(10)
        return c

    first = connect()
    subscribed = threading.Event()
    first.on_subscribe = lambda *a: subscribed.set()
    first.subscribe(topic, qos=1)
    assert subscribed.wait(10), "no SUBACK"
    first.disconnect()
    first.loop_stop()
    n = 60_000
    body = "x" * 1000
    pub = Publisher(broker.port)
    for i in range(n):
        pub.publish(topic, f"{i} {body}")
    pub.wait_acked(n, timeout=120)
    pub.close()
    got.clear()
    drops.clear()
    client = connect()  # the broker replays 60 MB as fast as it can
    wait_until(lambda: len(got) >= n, timeout=120, what=f"{n} queued messages")
    time.sleep(2.5)  # past 1.5 x keepalive after the replay
    assert drops == [], f"the broker dropped the client: {drops}"
    assert len(got) == n
    assert not any(got), "messages were redelivered: PUBACKs did not reach the broker"
    client.disconnect()
    client.loop_stop()


def test_run_names_an_unknown_role(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from offsite.cli import main

    monkeypatch.delenv("OFFSITE_CONFIG", raising=False)
    monkeypatch.setenv("OFFSITE_STATE_DIR", str(tmp_path))
    assert main(["run", "--role", "ingest,rules"]) == 2
    err = capsys.readouterr().err
    assert "unknown role 'rules'" in err
    assert "ingest, engine, video, api" in err


def test_the_buffered_reader_decodes_every_publish_as_paho_does(broker: EmbeddedBroker) -> None:
    """BufferedClient decodes a PUBLISH without properties itself (paho's MQTT 5 properties
    object is a quarter of an ingest process's time a message): a BufferedClient and a
    plain paho client subscribed to the same topics must see the same messages, whatever
    their QoS, retain flag, payload (empty included) and properties."""
    run = f"dec-{os.getpid()}-{time.monotonic_ns()}"
    seen: dict[str, list[tuple[object, ...]]] = {"buffered": [], "paho": []}

    def subscriber(name: str, cls: type[mqtt.Client]) -> mqtt.Client:
        c = cls(CallbackAPIVersion.VERSION2, client_id=f"{run}-{name}", protocol=mqtt.MQTTv5)

        def on_message(client: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
            props = getattr(msg.properties, "UserProperty", None)
            seen[name].append((msg.topic, bytes(msg.payload), msg.qos, msg.retain, props))

        c.on_message = on_message
        subscribed = threading.Event()
        c.on_subscribe = lambda *a: subscribed.set()

        def on_connect(*a: object) -> None:
            c.subscribe(f"{run}/#", qos=1)

        c.on_connect = on_connect
        c.connect("127.0.0.1", broker.port)
        c.loop_start()
        assert subscribed.wait(10), f"{name}: no SUBACK"
        return c

    clients = [subscriber("buffered", BufferedClient), subscriber("paho", mqtt.Client)]
    pub = Publisher(broker.port)
    ts = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    ts.UserProperty = ("ts", "1764806400000")
    sent = [
        (f"{run}/a", b'{"ts":1,"metrics":{"t":1.5}}', 1, False, None),
        (f"{run}/b", b"", 1, False, None),
        (f"{run}/c", b"zero", 0, False, None),
        (f"{run}/d/\xe4\xb8\xad", "中文".encode(), 1, False, None),
        (f"{run}/e", b"\x00\x01frame", 1, False, ts),
        (f"{run}/f", b"x" * 70_000, 1, False, None),
        (f"{run}/g", b"kept", 1, True, None),
    ]
    for topic, payload, qos, retain, props in sent:
        pub.publish(topic, payload, qos=qos, retain=retain, properties=props)
    wait_until(lambda: all(len(v) >= len(sent) for v in seen.values()), timeout=20,
               what="both subscribers got every message")  # fmt: skip
    pub.publish(f"{run}/g", b"", qos=1, retain=True)  # clear the retained message
    pub.close()
    for c in clients:
        c.disconnect()
        c.loop_stop()
    got = seen["buffered"][: len(sent)]
    assert got == seen["paho"][: len(sent)]
    assert [m[0] for m in got] == [s[0] for s in sent]
    assert got[4][4] == [("ts", "1764806400000")]
    assert got[1][1] == b""
    assert got[5][1] == b"x" * 70_000
