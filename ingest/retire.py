"""Retiring an ingest worker (or a host's workers) for good.

Mosquitto goes on dealing a shared-group member its round-robin share while it is
disconnected, into its session's queue (measured: docs/operators.md), so a worker that never
comes back holds a share of the stream until its session expires, and then that share is
gone. Retiring one does it in order: connect under its client id and login, resuming its
session, UNSUBSCRIBE at once (the broker deals it no more of the live stream), store and
acknowledge what the broker had queued or in flight for it until nothing has come for a
while, then disconnect and connect once more with a clean start and no session expiry,
which makes the broker discard the session and with it the membership. Nothing is lost on
the way: it is the ingest path itself, PUBACK after commit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from prometheus_client import CollectorRegistry

from ingest.intake import BrokerAddress, MqttIntake, broker_client
from ingest.service import IngestService
from ingest.worker_process import WorkerSpec, worker_service


class RetireError(Exception):
    """The worker could not be retired; its session is left as it was."""


@dataclass(frozen=True, slots=True)
class Retired:
    client_id: str
    messages: int  # what was stored and acknowledged from its session


def _handled(registry: CollectorRegistry) -> int:
    total = 0.0
    for family in registry.collect():
        if family.name == "offsite_ingest_messages":
            total += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return int(total)


def _until_quiet(
    service: IngestService,
    registry: CollectorRegistry,
    quiet_s: float,
    deadline: float,
    say: Callable[[str], None],
) -> int:
    """Wait until nothing has arrived for `quiet_s` and the writer holds nothing."""
    last, since, told = -1, time.monotonic(), time.monotonic()
    while True:
        now = time.monotonic()
        handled = _handled(registry)
        if handled != last or service.writer.queue.qsize():
            last, since = handled, now
        elif now - since >= quiet_s:
            return handled
        if now > deadline:
            raise RetireError(f"still receiving after the time limit ({handled} messages so far)")
        if now - told >= 5:
            say(f"  {handled:,} messages stored so far")
            told = now
        time.sleep(0.2)


def forget_session(spec: WorkerSpec, timeout_s: float = 30.0) -> None:
    """Connect with a clean start and no session expiry, then leave: the broker discards
    the client id's session (MQTT 5 and 3.1.1 alike)."""
    address = BrokerAddress(spec.broker_url)
    client = broker_client(mqtt.Client, spec.mqtt.client_id, spec.mqtt, address)
    answered = threading.Event()
    refused: list[str] = []

    def on_connect(c: mqtt.Client, u: object, flags: object, reason: object, p: object) -> None:
        if getattr(reason, "is_failure", False):
            refused.append(str(reason))
        answered.set()

    client.on_connect = on_connect
    client.connect(address.host, address.port, keepalive=spec.mqtt.keepalive_s)
    client.loop_start()
    try:
        if not answered.wait(timeout_s):
            raise RetireError("the broker did not answer the clean connect")
        if refused:
            raise RetireError(f"the broker refused the clean connect: {refused[0]}")
    finally:
        client.disconnect()
        client.loop_stop()


def retire(
    spec: WorkerSpec,
    quiet_s: float = 5.0,
    timeout_s: float = 3600.0,
    say: Callable[[str], None] = print,
) -> Retired:
    """Leave the shared group as worker `spec`, store what its session held, and have the
    broker forget the session."""
    registry = CollectorRegistry()
    service = worker_service(spec, registry)
    intake = service.intake
    if not isinstance(intake, MqttIntake):
        raise RetireError("the service has no MQTT intake of its own")
    deadline = time.monotonic() + timeout_s
    service.start()
    try:
        connect_by = time.monotonic() + 30
        while not intake.connected:
            if time.monotonic() > connect_by:
                raise RetireError(f"could not connect to the broker as {spec.mqtt.client_id!r}")
            time.sleep(0.1)
        intake.leave_group()
        say(f"{spec.mqtt.client_id}: connected and left the shared group; storing what the"
            " broker kept for it")  # fmt: skip
        handled = _until_quiet(service, registry, quiet_s, deadline, say)
    finally:
        left = service.stop()
    if left:
        raise RetireError(f"did not stop in time ({', '.join(left)}); the session is kept")
    forget_session(spec)
    say(f"{spec.mqtt.client_id}: {handled:,} messages stored; the broker forgot the session")
    return Retired(spec.mqtt.client_id, handled)
