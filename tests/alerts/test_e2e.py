"""End to end: an MQTT publish becomes a clue, an alert, a signed webhook and an SSE event."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from alerts.notify.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from api.auth import create_key
from offsite.app import OffsiteApp
from offsite.embedded import EmbeddedBroker
from tests.alerts.support import CHEM, SHOP, Reader, Receiver, free_port, send_gas_alarm, tank_farm
from tests.helpers import Publisher, wait_until

SECRET = "e2e-secret"
RULE = """
rules:
  - id: gas-lel-high
    version: 1
    department: EMB
    title: Combustible gas at or above 25 %LEL
    legal_basis: GB/T 50493-2019 5.5.2
    severity: critical
    credit_tiered: false
    selector: {metric: lel, role: gas_detector}
    kind: threshold
    op: ">="
    limit: 25
    clear: 20
  # AMR's own rule: its alert, streamed after EMB's, shows AMR's stream has read past them.
  - id: boiler-pressure-high
    version: 1
    department: AMR
    title: Boiler pressure high
    legal_basis: TSG 11-2020
    severity: major
    credit_tiered: false
    selector: {metric: pressure_mpa, role: boiler}
    kind: threshold
    op: ">="
    limit: 1.6
"""


def test_publish_to_webhook_and_stream(
    make_settings: Callable[..., Any],
    broker: EmbeddedBroker,
    db: psycopg.Connection[Any],
    tmp_path: Path,
) -> None:
    rules = tank_farm(db, tmp_path, RULE, departments=("EEB", "EMB"))
    db.execute(
        "INSERT INTO subjects (credit_code, name, industry, grid)"
        " VALUES (%s, 'Laundry', 'x', 'G-02')",
        (SHOP,),
    )
    db.execute(
        "INSERT INTO subject_departments (credit_code, department) VALUES (%s, 'AMR')", (SHOP,)
    )
    db.execute(
        "INSERT INTO device_bindings (device_id, credit_code, role)"
        " VALUES ('boiler-1', %s, 'boiler')",
        (SHOP,),
    )
    emb_key = create_key(db, "EMB", "viewer")
    amr_key = create_key(db, "AMR", "viewer")
    receiver = Receiver(free_port())
    receiver.start()
    route = {"name": "emb", "kind": "webhook", "url": receiver.url, "secret": SECRET,
             "department": "EMB", "min_severity": "major"}  # fmt: skip
    settings = make_settings(
        rules={"directory": str(rules)},
        alerts={"routes": [route], "outbox_poll_s": 0.2},
    )
    try:
        with OffsiteApp(settings) as app:
            wait_until(lambda: app.readiness()["broker"], what="broker connection")
            base = f"http://127.0.0.1:{app.http_port}/api/v1/stream"
            emb = Reader(base, {"Authorization": f"Bearer {emb_key}"})
            amr = Reader(base, {"Authorization": f"Bearer {amr_key}"})
            emb.wait_connected()
            amr.wait_connected()
            pub = Publisher(broker.port)
            try:
                ts = int(time.time() * 1000)
                send_gas_alarm(pub, ts)
                wait_until(receiver.bodies, 30, what="the webhook delivery")
                frames = emb.wait(2, timeout=30)
                # Events stream in commit order: once AMR's own alert arrives, AMR's stream
                # has read past EMB's events, so anything of EMB's it could see would be here.
                pub.publish("offsite/v1/devices/boiler-1/telemetry",
                            json.dumps({"ts": ts, "values": {"pressure_mpa": 2.0}}))  # fmt: skip
                amr_frames = amr.wait(1, timeout=30)
            finally:
                pub.close()
                emb.close()
                amr.close()
            assert {f.data["subject_key"] for f in amr_frames} == {SHOP}
    finally:
        receiver.stop()
    (got,) = receiver.bodies()
    assert verify_signature(SECRET, got.header(TIMESTAMP_HEADER), got.body,
                            got.header(SIGNATURE_HEADER))  # fmt: skip
    doc = got.json()
    assert doc["event"] == "opened"
    assert doc["alert"]["credit_code"] == CHEM
    assert doc["alert"]["severity"] == "critical"
    assert doc["clues"][0]["rule_id"] == "gas-lel-high"
    kinds = {(f.event, f.data.get("action")) for f in frames}
    assert ("alert", "opened") in kinds
    assert all(f.data["subject_key"] == CHEM for f in frames)
    row = db.execute("SELECT state, grid, departments FROM alerts").fetchone()
    assert row == ("open", "G-01", ["EMB"])
