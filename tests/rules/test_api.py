"""HTTP routes of rules and clues: scoping, validation with lines, dry run, reload."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool

from api.app import create_app
from api.auth import create_key
from api.context import ApiContext
from rules.service import RuleService
from tests.rules.conftest import Clock, ServiceFactory, store_readings
from tests.rules.support import COD_HIGH, MemoryDirectory, at, device, readings

EEB_RULE = COD_HIGH
EMB_RULE = EEB_RULE.replace("cod-high", "lel-high").replace("EEB", "EMB").replace("cod", "lel")


@pytest.fixture
def service(tmp_path: Path, make_service: ServiceFactory) -> RuleService:
    d = tmp_path / "rules"
    d.mkdir()
    (d / "eeb.yaml").write_text(EEB_RULE, encoding="utf-8")
    (d / "emb.yaml").write_text(EMB_RULE, encoding="utf-8")
    directory = MemoryDirectory([device("ww-1", "wastewater_outlet")])
    return make_service(d, directory, Clock(at(30).timestamp()))


@pytest.fixture
def client(pool: ConnectionPool, service: RuleService) -> Iterator[TestClient]:
    ctx = ApiContext(pool, CollectorRegistry(), lambda: {"database": True, "broker": True})
    ctx.provide(RuleService, service)
    with TestClient(create_app(ctx)) as c:
        yield c


def auth(db: psycopg.Connection[Any], dept: str = "EEB", role: str = "viewer") -> dict[str, str]:
    return {"Authorization": f"Bearer {create_key(db, dept, role)}"}


def test_rules_are_listed_for_the_callers_department(
    client: TestClient, db: psycopg.Connection[Any]
) -> None:
    assert client.get("/api/v1/rules").status_code == 401
    listed = client.get("/api/v1/rules", headers=auth(db)).json()
    assert [(r["id"], r["source"]) for r in listed] == [("cod-high", "eeb.yaml:1")]
    assert listed[0]["spec"]["limit"] == 50
    assert client.get("/api/v1/rules/cod-high", headers=auth(db)).json()["kind"] == "threshold"
    assert client.get("/api/v1/rules/lel-high", headers=auth(db)).status_code == 404
    assert client.get("/api/v1/rules/lel-high", headers=auth(db, "EMB")).status_code == 200


def test_validate_reports_lines(client: TestClient, db: psycopg.Connection[Any]) -> None:
    ok = client.post("/api/v1/rules/validate", content=EEB_RULE, headers=auth(db)).json()
    assert ok["valid"] is True
    assert ok["rule"]["id"] == "cod-high"
    bad = EEB_RULE.replace("limit: 50", "limit: fifty").replace("department: EEB", "department: X")
    out = client.post("/api/v1/rules/validate", content=bad, headers=auth(db)).json()
    assert out["valid"] is False
    # The number is wrong (line 10); the department is checked once the shape is valid.
    assert [p["line"] for p in out["problems"]] == [10]
    assert out["problems"][0]["message"].startswith("rules.0.limit")
    assert "'fifty' is not a limit" in out["problems"][0]["message"]
    as_json = client.post(
        "/api/v1/rules/validate",
        json={
            "id": "x",
            "version": 1,
            "department": "EEB",
            "title": "t",
            "legal_basis": "b",
            "severity": "info",
            "kind": "absence",
            "for": "10m",
            "colour": "red",
        },
        headers=auth(db),
    ).json()
    assert as_json["valid"] is False
    assert as_json["problems"][0]["message"] == "rules.0.colour: unknown key"


def test_dry_run_replays_stored_readings(client: TestClient, db: psycopg.Connection[Any]) -> None:
    store_readings(db, readings("ww-1", "cod", [(0, 10), (1, 70), (2, 80), (3, 20), (5, 90)]))
    body = {"rule": EEB_RULE, "since": at(-1).isoformat(), "until": at(10).isoformat()}
    r = client.post("/api/v1/rules/dry-run", json=body, headers=auth(db))
    assert r.status_code == 200, r.text
    clues = r.json()
    assert [(c["started_at"], c["ended_at"]) for c in clues] == [
        (at(1).isoformat().replace("+00:00", "Z"), at(3).isoformat().replace("+00:00", "Z")),
        (at(5).isoformat().replace("+00:00", "Z"), None),
    ]
    assert clues[0]["trigger"][0]["value"] == 70.0
    # Nothing was written: a dry run is read-only.
    assert db.execute("SELECT count(*) FROM clues").fetchone() == (0,)
    other = client.post("/api/v1/rules/dry-run", json=body, headers=auth(db, "EMB"))
    assert other.status_code == 403
    bad = client.post("/api/v1/rules/dry-run", json={**body, "rule": "id: x\n"}, headers=auth(db))
    assert bad.status_code == 422
    assert bad.json()["detail"].startswith("rule: line 1: ")


def test_reload_needs_admin_and_refuses_invalid_sets(
    client: TestClient, db: psycopg.Connection[Any], service: RuleService
) -> None:
    assert client.post("/api/v1/rules/reload", headers=auth(db)).status_code == 403
    admin = auth(db, "EEB", "admin")
    assert client.post("/api/v1/rules/reload", headers=admin).json()["rules"] == 2
    (service.settings.directory / "bad.yaml").write_text("- id: [", encoding="utf-8")
    r = client.post("/api/v1/rules/reload", headers=admin)
    assert r.status_code == 422
    assert r.json()["detail"]["problems"][0]["message"].startswith("bad.yaml:")
    assert len(service.ruleset.rules) == 2


def test_clues_are_filtered_and_scoped(
    client: TestClient, db: psycopg.Connection[Any], service: RuleService
) -> None:
    batch = readings("ww-1", "cod", [(0, 90), (1, 10), (2, 95)])
    store_readings(db, batch)
    service.readings_committed(batch)
    assert service.wait_idle()
    eeb = auth(db)
    all_ = client.get("/api/v1/clues", headers=eeb).json()
    assert [(c["status"], c["device_ids"]) for c in all_] == [
        ("firing", ["ww-1"]),
        ("resolved", ["ww-1"]),
    ]
    firing = client.get("/api/v1/clues?status=firing", headers=eeb).json()
    assert len(firing) == 1
    assert client.get("/api/v1/clues?rule_id=nope", headers=eeb).json() == []
    since = client.get("/api/v1/clues", params={"since": at(2).isoformat()}, headers=eeb).json()
    assert len(since) == 1
    by_subject = client.get(
        "/api/v1/clues", params={"credit_code": "91310000MA1FL4CT3X"}, headers=eeb
    ).json()
    assert len(by_subject) == 2
    assert client.get("/api/v1/clues", headers=auth(db, "EMB")).json() == []
    assert client.get("/api/v1/clues?department=EMB", headers=eeb).json() == []
    one = all_[0]["id"]
    assert client.get(f"/api/v1/clues/{one}", headers=eeb).status_code == 200
    assert client.get(f"/api/v1/clues/{one}", headers=auth(db, "EMB")).status_code == 404


PERMIT_RULE = EEB_RULE.replace("limit: 50", "limit: {attribute: permit.cod_mg_l}")


def test_dry_run_sees_only_the_callers_subjects(
    pool: ConnectionPool, make_service: ServiceFactory, tmp_path: Path, db: psycopg.Connection[Any]
) -> None:
    ours = device("ww-1", "wastewater_outlet", attributes={"permit.cod_mg_l": 50.0})
    theirs = replace(
        device(
            "ww-amr",
            "wastewater_outlet",
            credit_code="91320000MA1MYXHF2B",
            attributes={"permit.cod_mg_l": 37.25},
            tags=("amr-private-tag",),
        ),
        departments=frozenset({"AMR"}),
    )
    d = tmp_path / "rules"
    d.mkdir()
    service = make_service(d, MemoryDirectory([ours, theirs]), Clock(at(30).timestamp()))
    ctx = ApiContext(pool, CollectorRegistry(), lambda: {"database": True, "broker": True})
    ctx.provide(RuleService, service)
    for dev in ("ww-1", "ww-amr", "ww-unbound"):
        store_readings(db, readings(dev, "cod", [(0, 10), (1, 70), (2, 80)]))
    body = {"rule": PERMIT_RULE, "since": at(-1).isoformat(), "until": at(10).isoformat()}
    with TestClient(create_app(ctx)) as client:
        for role in ("viewer", "admin"):
            r = client.post("/api/v1/rules/dry-run", json=body, headers=auth(db, "EEB", role))
            assert r.status_code == 200, r.text
            assert [c["device_ids"] for c in r.json()] == [["ww-1"]]
            for secret in ("91320000MA1MYXHF2B", "amr-private-tag", "37.25", "ww-amr", "unbound"):
                assert secret not in r.text
            # Naming another department's device explicitly finds nothing either.
            only = client.post(
                "/api/v1/rules/dry-run",
                json={**body, "device_ids": ["ww-amr", "ww-unbound"]},
                headers=auth(db, "EEB", role),
            )
            assert only.status_code == 200
            assert only.json() == []
