"""A device bound while the server runs is judged by its rules at once, not at a refresh."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg

from ingest.topics import telemetry_topic
from offsite.app import OffsiteApp
from offsite.embedded import EmbeddedBroker
from tests.helpers import Publisher, wait_until

SUBJECT = "91320500MA1MYYYY53"


def test_binding_made_after_readings_applies_within_seconds(
    make_settings: Callable[..., Any], broker: EmbeddedBroker, db: psycopg.Connection[Any]
) -> None:
    device = f"gas-{uuid.uuid4().hex[:6]}"
    with OffsiteApp(make_settings()) as app:
        wait_until(lambda: app.readiness()["broker"], what="broker connection")
        pub = Publisher(broker.port)
        now = int(time.time() * 1000)
        # Unbound: the engine looks the device up and remembers that it has no subject.
        pub.publish(telemetry_topic(device), f'{{"ts": {now - 2000}, "values": {{"lel": 3}}}}')
        wait_until(
            lambda: db.execute("SELECT 1 FROM readings WHERE device_id = %s", (device,)).fetchone(),
            what="the unbound reading stored",
        )
        db.execute(
            "INSERT INTO subjects (credit_code, name, industry) VALUES (%s, '某燃气站', 'gas')",
            (SUBJECT,),
        )
        db.execute(
            "INSERT INTO subject_departments (credit_code, department) VALUES (%s, 'EMB')",
            (SUBJECT,),
        )
        db.execute(
            "INSERT INTO device_bindings (device_id, credit_code, role)"
            " VALUES (%s, %s, 'gas_detector')",
            (device, SUBJECT),
        )
        # The directory hears the change by NOTIFY and tells the engine; until it has, a
        # breaching reading is judged as unbound. Keep sending fresh breaching readings until
        # one raises the clue: the periodic refresh is 60 s away, so it must not wait for it.
        sent = [now]

        def clue_raised() -> bool:
            sent.append(sent[-1] + 250)
            pub.publish(telemetry_topic(device), f'{{"ts": {sent[-1]}, "values": {{"lel": 30}}}}')
            return bool(
                db.execute(
                    "SELECT 1 FROM clues WHERE rule_id = 'gas-lel-alarm-1'"
                    " AND %s = ANY(device_ids)",
                    (device,),
                ).fetchone()
            )

        wait_until(
            clue_raised, timeout=15, interval=0.25, what="the clue on the newly bound device"
        )
        pub.close()
