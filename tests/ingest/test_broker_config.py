"""The shipped Mosquitto config (deploy/mosquitto) under what production asks of it.

Each test starts Mosquitto from deploy/mosquitto/mosquitto.conf (its [site] lines replaced by
a loopback listener) and checks one promise the config and docs/operators.md make: shared
subscriptions split the stream, persistent sessions keep what arrives while a subscriber is
away with no silent limit, a leaving group member's in-flight messages wait in its session,
and, with logins and the shipped ACL, ingest workers each hold their own client id.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.topics import telemetry_topic
from offsite.app import OffsiteApp
from offsite.embedded import EmbeddedBroker
from tests.helpers import Publisher, broker_with_logins, wait_until


class Member:
    """A QoS 1 subscriber with a persistent session that acks only when told to."""

    def __init__(
        self, port: int, client_id: str, topic: str, ack: bool, clean: bool, expiry: int = 3600
    ) -> None:
        self.got: list[tuple[int, bool]] = []
        self.ack = ack
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        self.client.on_message = self._on_message
        connected = threading.Event()
        self.client.on_connect = lambda *a: connected.set()
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = expiry
        self.client.connect("127.0.0.1", port, clean_start=clean, properties=props)
        self.client.loop_start()
        assert connected.wait(10)
        if clean:  # a returning member's subscription is in its session already
            subscribed = threading.Event()
            self.client.on_subscribe = lambda *a: subscribed.set()
            self.client.subscribe(topic, qos=1)
            assert subscribed.wait(10)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.got.append((int(msg.payload), bool(msg.dup)))
        if self.ack:
            client.ack(msg.mid, msg.qos)

    def values(self, lo: int = 0, hi: int = 1 << 30) -> set[int]:
        with self._lock:
            return {v for v, _ in self.got if lo <= v < hi}

    def leave(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _publish(port: int, topic: str, values: range) -> None:
    pub = Publisher(port)
    for v in values:
        pub.publish(topic, str(v))
    pub.wait_acked(len(values), timeout=60)
    pub.close()


def test_a_shared_group_splits_the_stream_and_a_leaving_member_keeps_its_share(
    broker: EmbeddedBroker,
) -> None:
    """Measured on Mosquitto 2.0: round-robin; a member that leaves with a persistent session
    keeps its unacknowledged messages *and goes on being dealt its share* while away; all of
    it is delivered when it comes back under the same client id."""
    group = f"$share/g{time.monotonic_ns()}/cfg/share/#"
    a = Member(broker.port, f"a-{time.monotonic_ns()}", group, ack=False, clean=True)
    b = Member(broker.port, f"b-{time.monotonic_ns()}", group, ack=True, clean=True)
    _publish(broker.port, "cfg/share/x", range(0, 100))
    wait_until(lambda: len(a.values()) + len(b.values()) == 100, what="the first 100 split")
    held = a.values()
    assert 30 <= len(held) <= 70, f"not round-robin: {len(held)} of 100 to one member"
    a.leave()  # with 50 or so in flight, unacknowledged
    _publish(broker.port, "cfg/share/x", range(100, 200))
    time.sleep(1.0)
    # The other member did not get the leaver's in-flight messages nor all the new ones.
    assert not (b.values() & held)
    while_away = b.values(100, 200)
    assert 30 <= len(while_away) <= 70, f"{len(while_away)} of 100 reached the member left"
    back = Member(broker.port, a.client._client_id.decode(), group, ack=True, clean=False)
    wait_until(lambda: len(back.values()) >= len(held) + 100 - len(while_away),
               what="the leaver's share on its return")  # fmt: skip
    assert held <= back.values(0, 100)  # redelivered, flagged as duplicates
    assert all(dup for v, dup in back.got if v in held)
    assert back.values() | b.values() == set(range(200))
    back.leave()
    b.leave()


def test_a_leaving_member_without_a_session_loses_its_in_flight_messages(
    broker: EmbeddedBroker,
) -> None:
    """Why every ingest worker keeps a persistent session: with session expiry 0 the broker
    drops what it had in flight to a member that leaves; nobody else gets it."""
    group = f"$share/g{time.monotonic_ns()}/cfg/clean/#"
    a = Member(broker.port, f"a-{time.monotonic_ns()}", group, ack=False, clean=True, expiry=0)
    b = Member(broker.port, f"b-{time.monotonic_ns()}", group, ack=True, clean=True)
    _publish(broker.port, "cfg/clean/x", range(0, 100))
    wait_until(lambda: len(a.values()) + len(b.values()) == 100, what="100 split")
    held = a.values()
    assert held
    a.leave()
    _publish(broker.port, "cfg/clean/x", range(100, 200))
    wait_until(lambda: len(b.values(100, 200)) == 100, what="the rest to the member left")
    time.sleep(0.5)
    assert not (b.values() & held), "in-flight messages of the leaver were redelivered"
    b.leave()


def test_a_persistent_session_queues_past_debians_default_limit(broker: EmbeddedBroker) -> None:
    """max_queued_messages 0 (byte-limited only): 30,000 messages queued while the
    subscriber is away all arrive; Debian's default of 1,000 would drop 29,000 silently."""
    cid = f"q-{time.monotonic_ns()}"
    sub = Member(broker.port, cid, "cfg/queue/#", ack=True, clean=True)
    sub.leave()
    _publish(broker.port, "cfg/queue/x", range(30_000))
    back = Member(broker.port, cid, "cfg/queue/#", ack=True, clean=False)
    wait_until(lambda: len(back.values()) == 30_000, timeout=60, what="all 30,000 queued")
    back.leave()


# -- with logins and the shipped ACL -------------------------------------------------------

PASSWORDS = {
    "offsite-ingest-1": "w-s3cret",
    "offsite-ingest-2": "w-s3cret",
    "dev-1": "device-1-s3cret",
    "dev-2": "device-2-s3cret",
}


@pytest.fixture
def auth_broker() -> Iterator[EmbeddedBroker]:
    if shutil.which("mosquitto_passwd") is None:
        pytest.skip("needs mosquitto_passwd to make logins")
    yield from broker_with_logins(PASSWORDS, "offsite-cfg-broker-")


def test_ingest_workers_log_in_as_their_own_users_and_a_device_cannot_take_one(
    auth_broker: EmbeddedBroker, make_settings: Callable[..., Any], db: psycopg.Connection[Any]
) -> None:
    url = f"mqtt://offsite-ingest:w-s3cret@127.0.0.1:{auth_broker.port}"
    settings = make_settings(
        roles="ingest",
        ingest={"workers": 2},
        mqtt={"url": url, "client_id": "offsite-ingest", "worker_users": True},
    )
    with OffsiteApp(settings) as app:
        wait_until(lambda: app.readiness()["broker"], timeout=60, what="both workers logged in")
        pub = Publisher(auth_broker.port, "dev-1", "dev-1", PASSWORDS["dev-1"])
        t0 = int(time.time() * 1000) - 100_000
        for i in range(200):
            pub.publish(telemetry_topic("dev-1"), f'{{"ts": {t0 + i}, "values": {{"v": {i}}}}}')
            if i == 100:
                # Another device's login asking for worker 1's client id gets its user name
                # as client id instead (use_username_as_clientid): the worker stays.
                thief = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="offsite-ingest-1",
                                    protocol=mqtt.MQTTv5)  # fmt: skip
                thief.username_pw_set("dev-2", PASSWORDS["dev-2"])
                thief.connect("127.0.0.1", auth_broker.port)
                thief.loop_start()
        pub.wait_acked(200)

        def stored() -> int:
            row = db.execute("SELECT count(*) FROM readings WHERE device_id = 'dev-1'").fetchone()
            return int(row[0]) if row else 0

        wait_until(lambda: stored() == 200, timeout=30, what="200 readings via two workers")
        checks = app.readiness()
        assert checks["ingest-worker-1"]
        assert checks["ingest-worker-2"]
        assert app.registry.get_sample_value("offsite_ingest_worker_restarts_total") == 0
        thief.disconnect()
        thief.loop_stop()
        pub.close()
