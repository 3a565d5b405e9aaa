"""offsite's MQTT session: a device login cannot take it over, and losing it is alarmed."""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ingest.topics import telemetry_topic
from offsite.app import OffsiteApp
from offsite.embedded import EmbeddedBroker
from tests.helpers import Publisher, broker_with_logins, wait_until

PASSWORDS = {"offsite-ingest": "ingest-s3cret", "dev-1": "device-1-s3cret", "dev-2": "d2-s3cret"}

pytestmark = pytest.mark.skipif(
    shutil.which("mosquitto_passwd") is None, reason="needs mosquitto_passwd to make logins"
)


@pytest.fixture
def auth_broker() -> Iterator[EmbeddedBroker]:
    """Mosquitto with the project's config, a password file and the shipped ACL."""
    yield from broker_with_logins(PASSWORDS, "offsite-auth-broker-")


def _client(port: int, user: str | None, client_id: str) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    if user is not None:
        c.username_pw_set(user, PASSWORDS[user])
    connected = threading.Event()
    c.on_connect = lambda *a: connected.set()
    c.connect("127.0.0.1", port, clean_start=True)
    c.loop_start()
    assert connected.wait(10), f"{user or 'anonymous'} could not connect"
    return c


def _metric(app: OffsiteApp, name: str) -> float:
    return app.registry.get_sample_value(name) or 0.0


def _stored(db: psycopg.Connection[Any], device: str) -> int:
    row = db.execute("SELECT count(*) FROM readings WHERE device_id = %s", (device,)).fetchone()
    return int(row[0]) if row else 0


def test_a_device_login_cannot_take_offsites_client_id(
    auth_broker: EmbeddedBroker, make_settings: Callable[..., Any], db: psycopg.Connection[Any]
) -> None:
    url = f"mqtt://offsite-ingest:{PASSWORDS['offsite-ingest']}@127.0.0.1:{auth_broker.port}"
    settings = make_settings(mqtt={"url": url, "client_id": "offsite-ingest"})
    with OffsiteApp(settings) as app:
        wait_until(lambda: app.readiness()["broker"], what="offsite connected")
        # The banner names the broker without its password.
        assert app.endpoints.broker == f"mqtt://offsite-ingest:***@127.0.0.1:{auth_broker.port}"
        # A device logging in with its own credentials publishes 100 readings...
        pub = Publisher(auth_broker.port, "dev-1", "dev-1", PASSWORDS["dev-1"])
        t0 = int(time.time() * 1000) - 200_000
        thieves = []
        for i in range(100):
            pub.publish(
                telemetry_topic("dev-1"), f'{{"ts": {t0 + i * 1000}, "values": {{"cod": {i}}}}}'
            )
            if i % 20 == 10:
                # The probe's takeover: another device's login asking for offsite's id.
                thieves.append(_client(auth_broker.port, "dev-2", "offsite-ingest"))
        pub.wait_acked(100)
        wait_until(lambda: _stored(db, "dev-1") == 100, timeout=30, what="all 100 readings")
        assert app.readiness()["broker"]
        assert _metric(app, "offsite_mqtt_session_taken_over_total") == 0
        assert _metric(app, "offsite_mqtt_session_lost_total") == 0
        for c in thieves:
            c.disconnect()
            c.loop_stop()
        pub.close()


def test_a_taken_over_session_is_counted_and_logged(
    broker: EmbeddedBroker,
    make_settings: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The anonymous test broker binds nothing: what offsite does when a broker lets it happen.
    client_id = f"offsite-victim-{uuid.uuid4().hex[:6]}"
    with OffsiteApp(make_settings(mqtt={"client_id": client_id})) as app:
        wait_until(lambda: app.readiness()["broker"], what="offsite connected")
        thief = _client(broker.port, None, client_id)
        # Mosquitto 2.0 just closes offsite's socket (newer brokers send DISCONNECT 0x8E,
        # counted as offsite_mqtt_session_taken_over_total): offsite reconnects, and finds
        # that the thief's clean start destroyed its session.
        wait_until(
            lambda: _metric(app, "offsite_mqtt_session_lost_total") >= 1,
            timeout=30,
            what="the lost session counted after offsite reconnected",
        )
        thief.disconnect()
        thief.loop_stop()
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any("has no session for client id" in m for m in errors)
