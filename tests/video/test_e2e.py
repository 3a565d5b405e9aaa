"""End to end: JPEG frames published over MQTT → detection → clue with evidence, via the app."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from api.auth import create_key
from offsite.app import OffsiteApp
from offsite.embedded import EmbeddedBroker
from tests.helpers import Publisher, wait_until
from tests.rules.test_sample_pack import PACK
from video.service import VideoService
from video.synthetic import Scene, synthetic_frames

SUBJECT = "91310000MA1FL4CT3X"


def seed(db: psycopg.Connection[Any]) -> None:
    db.execute(
        "INSERT INTO subjects (credit_code, name, industry, grid, tags)"
        " VALUES (%s, 'Tank farm Co.', 'hazardous_chemicals', 'G1', '{burning_watch}')",
        (SUBJECT,),
    )
    db.execute(
        "INSERT INTO subject_departments (credit_code, department) VALUES (%s, 'EMB')", (SUBJECT,)
    )
    db.execute(
        "INSERT INTO device_bindings (device_id, credit_code, role) VALUES ('cam-1', %s, 'camera')",
        (SUBJECT,),
    )


def camera_settings(
    make_settings: Callable[..., Any],
    db: psycopg.Connection[Any],
    detectors: list[str],
    **video: Any,
) -> Any:
    """The site seeded; offsite with the sample pack's rules and one video worker on cam-1."""
    seed(db)
    cameras = [{"id": "cam-1", "detectors": detectors}]
    return make_settings(
        rules={"directory": str(PACK)}, video={"cameras": cameras, "workers": 1, **video}
    )


def send_flame(pub: Publisher, stamped: bool = False) -> int:
    """Sixty frames of a flame to cam-1 at a camera's 5 a second, each with its capture time
    (a `ts` user property) if `stamped`: the number sent."""
    start = time.monotonic()
    sent = 0
    for f in synthetic_frames(Scene(movers=0, flame=True), count=60):
        props = None
        if stamped:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.UserProperty = ("ts", str(int(time.time() * 1000)))
        pub.publish("offsite/v1/devices/cam-1/frames", f.jpeg, properties=props)
        sent += 1
        delay = start + (f.index + 1) / 5 - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # pacing, as a camera sends
    return sent


@pytest.mark.slow
def test_flame_frames_over_mqtt_raise_a_fire_clue_with_evidence(
    make_settings: Callable[..., Any], broker: EmbeddedBroker, db: psycopg.Connection[Any]
) -> None:
    settings = camera_settings(make_settings, db, ["motion", "fire", "smoke", "tamper"])
    emb, eeb = create_key(db, "EMB", "viewer"), create_key(db, "EEB", "viewer")
    with OffsiteApp(settings) as app:
        wait_until(lambda: app.readiness()["broker"], what="broker connection")
        pub = Publisher(broker.port)
        try:
            pub.wait_acked(send_flame(pub, stamped=True))

            def clue() -> tuple[Any, ...] | None:
                return db.execute(
                    "SELECT rule_id, device_ids, evidence_ids, department FROM clues"
                    " WHERE rule_id = 'site-fire'"
                ).fetchone()

            row = wait_until(clue, timeout=30, what="the site-fire clue")
            assert row[1] == ["cam-1"]
            assert row[3] == "EMB"
            assert row[2], "the clue carries no evidence id"
            evidence_id = row[2][0]
            stored = db.execute(
                "SELECT camera_id, detections->0->>'label' FROM video_evidence WHERE sha256 = %s",
                (evidence_id,),
            ).fetchone()
            assert stored == ("cam-1", "fire")

            url = f"http://127.0.0.1:{app.http_port}/api/v1/evidence/{evidence_id}"
            r = httpx.get(url, headers={"Authorization": f"Bearer {emb}"})
            assert r.status_code == 200
            assert r.headers["x-content-sha256"] == evidence_id
            assert hashlib.sha256(r.content).hexdigest() == evidence_id
            assert r.headers["x-evidence-variant"] == "annotated"  # EMB owns the subject
            # EEB takes no part in this alert: the evidence does not exist for it.
            r = httpx.get(url, headers={"Authorization": f"Bearer {eeb}"})
            assert r.status_code == 404

            # The alert holds the clue with its evidence, so retention keeps that evidence
            # (alerts' guard) and removes only what no alert refers to.
            wait_until(
                lambda: db.execute(
                    "SELECT 1 FROM alert_clues WHERE %s = ANY(evidence_ids)", (evidence_id,)
                ).fetchone(),
                what="the alert carrying the evidence",
            )
            unreferenced = db.execute(
                "SELECT count(*) FROM video_evidence v WHERE NOT EXISTS (SELECT 1 FROM"
                " alert_clues a WHERE v.sha256 = ANY(a.evidence_ids))"
            ).fetchone()
            assert app.api_context is not None
            video = app.api_context.get(VideoService)
            removed = video.apply_retention(datetime.now(UTC) + timedelta(days=400))
            assert (removed,) == unreferenced
            assert video.evidence.record(evidence_id) is not None
            assert video.evidence.read(evidence_id)

            device = db.execute(
                "SELECT kind, online FROM devices WHERE device_id = 'cam-1'"
            ).fetchone()
            assert device == ("camera", True)
        finally:
            pub.close()
