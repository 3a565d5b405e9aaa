"""Other broker set-ups: the pure-Python fallback broker, and a shared subscription group."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from ingest.topics import telemetry_topic
from offsite.app import OffsiteApp
from offsite.embedded import EmbeddedBroker
from offsite.settings import load_settings
from tests.helpers import Publisher, wait_until
from tests.ingest.test_pipeline import count, now_ms


def test_pure_python_broker_fallback_ingests(tmp_path: Path, db_url: str) -> None:
    settings = load_settings(
        config_file=None,
        state_dir=tmp_path / "state",
        database={"url": db_url},
        mqtt={"embedded": "python"},
        http={"port": 0},
    )
    with OffsiteApp(settings) as app, psycopg.connect(db_url, autocommit=True) as db:
        assert app.endpoints.embedded[-1].startswith("amqtt")
        wait_until(lambda: app.readiness()["broker"], what="connection to amqtt")
        port = int(app.endpoints.broker.rsplit(":", 1)[1])
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="py-pub", protocol=mqtt.MQTTv311)
        pub.connect("127.0.0.1", port)
        pub.loop_start()
        t = now_ms()
        for i in range(50):
            pub.publish(
                telemetry_topic("py-1"), f'{{"ts": {t - i}, "values": {{"v": {i}}}}}', qos=1
            )
        wait_until(
            lambda: count(db, "SELECT count(*) FROM readings WHERE device_id = 'py-1'") == 50,
            what="50 readings through amqtt",
        )
        pub.disconnect()
        pub.loop_stop()


def test_shared_subscription_splits_load_and_stores_each_message_once(
    tmp_path: Path, db_url: str, broker: EmbeddedBroker, db: psycopg.Connection[Any]
) -> None:
    group = f"g{uuid.uuid4().hex[:6]}"

    def settings(n: int) -> Any:
        return load_settings(
            config_file=None,
            state_dir=tmp_path / f"s{n}",
            database={"url": db_url},
            mqtt={"url": broker.url, "client_id": f"{group}-{n}", "shared_group": group},
            http={"port": 0},
        )

    with OffsiteApp(settings(1)) as a, OffsiteApp(settings(2)) as b:
        wait_until(lambda: a.readiness()["broker"] and b.readiness()["broker"], what="both up")
        pub = Publisher(broker.port)
        device = f"shared-{group}"
        t = now_ms()
        for i in range(400):
            pub.publish(telemetry_topic(device), f'{{"ts": {t - i}, "values": {{"v": {i}}}}}')
        wait_until(
            lambda: count(db, "SELECT count(*) FROM readings WHERE device_id = %s", device) == 400,
            what="400 readings",
        )
        pub.close()

        def written() -> list[float]:
            return [
                app.registry.get_sample_value("offsite_ingest_readings_written_total") or 0
                for app in (a, b)
            ]

        # The counters move after the commit that made the rows visible (and after the
        # hand-off to the rules), so wait for them too before comparing.
        wait_until(lambda: sum(written()) >= 400, what="both writers' counters")
        per_instance = written()
    assert sum(per_instance) == 400
    assert min(per_instance) > 0, f"one instance took everything: {per_instance}"
