"""HTTP over ingested data: keys, scoping, devices, bucketed readings, dead letters, health."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.auth import KeyRequestError, create_key

T0 = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)


def headers(
    db: psycopg.Connection[Any], dept: str = "EEB", role: str = "platform_admin"
) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_key(db, dept, role)}"}


def seed(db: psycopg.Connection[Any]) -> None:
    db.execute(
        "INSERT INTO devices (device_id, first_seen, last_seen, online)"
        " VALUES ('aq-1', %s, %s, true), ('ww-1', %s, %s, false)",
        (T0, T0, T0, T0),
    )
    with db.cursor() as cur:
        cur.executemany(
            "INSERT INTO readings (time, device_id, metric, value) VALUES (%s, 'aq-1', 'pm25', %s)",
            [(T0 + timedelta(minutes=m), float(m)) for m in range(120)],
        )


def test_every_api_route_needs_a_valid_key(client: TestClient, db: psycopg.Connection[Any]) -> None:
    assert client.get("/api/v1/devices").status_code == 401
    r = client.get("/api/v1/devices", headers={"Authorization": "Bearer osk_nope"})
    assert r.status_code == 401
    assert "unknown or revoked" in r.json()["detail"]
    ok = client.get("/api/v1/devices", headers={"X-API-Key": create_key(db, "EEB", "viewer")})
    assert ok.status_code == 200


def test_keys_are_stored_hashed_and_validated(db: psycopg.Connection[Any]) -> None:
    key = create_key(db, "EMB", "officer", "duty desk")
    row = db.execute("SELECT key_hash, department, role FROM api_keys").fetchone()
    assert row is not None
    assert key not in row[0]
    assert row[1:] == ("EMB", "officer")
    with pytest.raises(KeyRequestError, match="department 'XYZ' is unknown"):
        create_key(db, "XYZ", "viewer")
    with pytest.raises(KeyRequestError, match="role 'boss' is not one of"):
        create_key(db, "EEB", "boss")


def test_departments_are_seeded(db: psycopg.Connection[Any]) -> None:
    codes = {r[0] for r in db.execute("SELECT code FROM departments")}
    assert {"EEB", "EMB", "AMR", "AGR", "HLT", "TRN", "HUD", "EDU", "HRS", "HSA", "FIN"} <= codes


def test_devices_listing_for_platform_admin(
    client: TestClient, db: psycopg.Connection[Any]
) -> None:
    seed(db)
    r = client.get("/api/v1/devices", headers=headers(db))
    assert r.status_code == 200
    assert [(d["device_id"], d["online"]) for d in r.json()] == [("aq-1", True), ("ww-1", False)]
    r = client.get("/api/v1/devices?online=false", headers=headers(db))
    assert [d["device_id"] for d in r.json()] == ["ww-1"]


def test_unbound_devices_are_hidden_from_all_but_the_platform_admin(
    client: TestClient, db: psycopg.Connection[Any]
) -> None:
    seed(db)
    r = client.get("/api/v1/devices", headers=headers(db, "EEB", "officer"))
    assert r.json() == []
    # A department admin is scoped like everyone in the department.
    r = client.get("/api/v1/devices", headers=headers(db, "EEB", "admin"))
    assert r.json() == []
    r = client.get("/api/v1/dead-letters", headers=headers(db, "EEB", "admin"))
    assert r.json() == []
    r = client.get(
        "/api/v1/devices/aq-1/readings?metric=pm25", headers=headers(db, "EEB", "viewer")
    )
    assert r.status_code == 404


def test_readings_raw_and_bucketed(client: TestClient, db: psycopg.Connection[Any]) -> None:
    seed(db)
    h = headers(db)
    q = "from=2026-11-26T00:00:00Z&to=2026-11-26T02:00:00Z"
    raw = client.get(f"/api/v1/devices/aq-1/readings?metric=pm25&{q}", headers=h).json()
    assert raw["bucket_seconds"] is None
    assert len(raw["points"]) == 120
    hourly = client.get(f"/api/v1/devices/aq-1/readings?metric=pm25&{q}&bucket=1h", headers=h)
    assert hourly.status_code == 200
    points = hourly.json()["points"]
    assert [(p["avg"], p["min"], p["max"], p["count"]) for p in points] == [
        (29.5, 0.0, 59.0, 60),
        (89.5, 60.0, 119.0, 60),
    ]
    assert points[0]["time"].startswith("2026-11-26T00:00:00")


def test_raw_readings_carry_their_data_flag(
    client: TestClient, db: psycopg.Connection[Any]
) -> None:
    seed(db)
    db.execute("UPDATE readings SET flag = 'C' WHERE time < %s", (T0 + timedelta(minutes=2),))
    q = "from=2026-11-26T00:00:00Z&to=2026-11-26T00:04:00Z"
    raw = client.get(f"/api/v1/devices/aq-1/readings?metric=pm25&{q}", headers=headers(db))
    assert [p["flag"] for p in raw.json()["points"]] == ["C", "C", "N", "N"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("bucket=fortnight", "must be a positive count and a unit"),
        ("bucket=0m", "must be a positive count and a unit"),
        ("from=2026-11-26T02:00:00Z&to=2026-11-26T01:00:00Z", "from must be earlier"),
        ("from=2026-11-26T00:00:00", "must carry a UTC offset"),
        ("from=2026-01-01T00:00:00Z&to=2026-11-26T00:00:00Z&bucket=1s", "more than 10000"),
    ],
)
def test_readings_bad_queries_say_why(
    client: TestClient, db: psycopg.Connection[Any], query: str, message: str
) -> None:
    seed(db)
    r = client.get(f"/api/v1/devices/aq-1/readings?metric=pm25&{query}", headers=headers(db))
    assert r.status_code == 422
    assert message in r.text


def test_dead_letters_listing(client: TestClient, db: psycopg.Connection[Any]) -> None:
    db.execute(
        "INSERT INTO dead_letters (topic, device_id, reason, detail, payload, payload_size,"
        " payload_sha256) VALUES ('offsite/v1/devices/x/telemetry', 'x', 'not_json',"
        " 'payload is not JSON', '{oops', 5, 'abc')"
    )
    r = client.get("/api/v1/dead-letters?reason=not_json", headers=headers(db))
    assert r.status_code == 200
    [letter] = r.json()
    assert (letter["reason"], letter["payload_preview"], letter["device_id"]) == (
        "not_json",
        "{oops",
        "x",
    )
    assert client.get("/api/v1/dead-letters?reason=other", headers=headers(db)).json() == []


def test_health_and_metrics_need_no_key(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"] == {"database": True, "broker": False}
    assert client.get("/metrics").status_code == 200
    assert client.get("/openapi.json").json()["info"]["title"] == "offsite"
