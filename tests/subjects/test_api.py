"""Subjects over HTTP with real keys: CRUD, search, scoping, links and bindings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from subjects.credit_code import make
from subjects.service import SubjectsService
from tests.subjects.conftest import ChangeLog

Key = Callable[..., dict[str, str]]

PLANT = make("9", "1", "330100", "71610585")
DYEWORKS = make("9", "1", "330106", "MA2H3K4L")
CLINIC = make("5", "2", "330100", "50123456")


def subject(code: str, name: str, **kw: object) -> dict[str, object]:
    return {"credit_code": code, "name": name, **kw}


def test_crud_round_trip(client: TestClient, key: Key, changes: ChangeLog) -> None:
    eeb = key("EEB")
    r = client.post(
        "/api/v1/subjects",
        json=subject(
            PLANT.lower(),
            "Riverside Chemical Co.",
            grid="XH-03",
            industry="chemicals",
            credit_grade="C",
            tags=["key_polluter", "hazchem"],
            attributes={"permit.cod_mg_l": 50},
        ),
        headers=eeb,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["credit_code"] == PLANT
    assert body["departments"] == ["EEB"]
    assert body["cross_department"] is False
    assert body["tags"] == ["hazchem", "key_polluter"]
    assert body["attributes"] == {"permit.cod_mg_l": 50.0}

    r = client.patch(
        f"/api/v1/subjects/{PLANT}", json={"credit_grade": "D", "risk_level": "major"}, headers=eeb
    )
    assert r.status_code == 200, r.text
    assert (r.json()["credit_grade"], r.json()["risk_level"]) == ("D", "major")
    assert r.json()["grid"] == "XH-03"

    r = client.get(f"/api/v1/subjects/{PLANT}", headers=key("EEB", "viewer"))
    assert r.status_code == 200
    assert r.json()["credit_grade"] == "D"

    assert client.delete(f"/api/v1/subjects/{PLANT}", headers=eeb).status_code == 204
    assert client.get(f"/api/v1/subjects/{PLANT}", headers=eeb).status_code == 404
    assert changes.kinds() == [
        "subject.created",
        "subject.department_linked",
        "subject.updated",
        "subject.deleted",
    ]
    updated = changes.changes[2]
    assert updated.before is not None
    assert updated.after is not None
    assert (updated.before["credit_grade"], updated.after["credit_grade"]) == ("C", "D")
    assert updated.actor.startswith("key:")
    assert updated.department == "EEB"


def test_bad_input_is_refused_with_the_field_and_rule(client: TestClient, key: Key) -> None:
    eeb = key("EEB")
    r = client.post("/api/v1/subjects", json=subject("91330100716105852G", "x"), headers=eeb)
    assert r.status_code == 422
    text = str(r.json()["detail"])
    assert "credit_code" in text
    assert "position 18" in text
    assert "'F'" in text
    r = client.post(
        "/api/v1/subjects",
        json=subject(PLANT, "x", credit_grade="E", attributes={"a": "many"}),
        headers=eeb,
    )
    assert r.status_code == 422
    locs = [e["loc"] for e in r.json()["detail"]]
    assert ["body", "credit_grade"] in locs
    assert ["body", "attributes", "a"] in locs
    client.post("/api/v1/subjects", json=subject(PLANT, "x"), headers=eeb)
    r = client.post("/api/v1/subjects", json=subject(PLANT, "x"), headers=eeb)
    assert r.status_code == 409
    assert "already exists" in r.json()["detail"]


def test_roles(client: TestClient, key: Key) -> None:
    viewer = key("EEB", "viewer")
    r = client.post("/api/v1/subjects", json=subject(PLANT, "x"), headers=viewer)
    assert r.status_code == 403
    assert "officer" in r.json()["detail"]
    assert client.get("/api/v1/subjects").status_code == 401
    assert client.get("/api/v1/subjects", headers=viewer).status_code == 200


def test_another_departments_subject_is_404(client: TestClient, key: Key) -> None:
    eeb, amr = key("EEB"), key("AMR")
    assert client.post("/api/v1/subjects", json=subject(PLANT, "p"), headers=eeb).status_code == 201
    for method, url, body in [
        ("GET", f"/api/v1/subjects/{PLANT}", None),
        ("PATCH", f"/api/v1/subjects/{PLANT}", {"name": "stolen"}),
        ("DELETE", f"/api/v1/subjects/{PLANT}", None),
        ("GET", f"/api/v1/subjects/{PLANT}/departments", None),
        ("GET", f"/api/v1/subjects/{PLANT}/devices", None),
    ]:
        r = client.request(method, url, json=body, headers=amr)
        assert r.status_code == 404, (method, url, r.text)
        assert "not found" in r.json()["detail"]
    assert client.get("/api/v1/subjects", headers=amr).json()["total"] == 0
    # Even an admin sees only what their department supervises.
    assert client.get(f"/api/v1/subjects/{PLANT}", headers=key("AMR", "admin")).status_code == 404
    assert client.get(f"/api/v1/subjects/{PLANT}", headers=eeb).json()["name"] == "p"


def test_search_filters_and_paging(client: TestClient, key: Key) -> None:
    eeb = key("EEB")
    rows = [
        subject(
            PLANT,
            "Riverside Chemical",
            grid="XH-03",
            industry="chemicals",
            credit_grade="C",
            tags=["hazchem", "key_polluter"],
        ),
        subject(
            DYEWORKS,
            "Eastbank Dyeworks",
            grid="XH-03",
            industry="textiles",
            credit_grade="D",
            tags=["key_polluter"],
        ),
        subject(CLINIC, "Lakeside Clinic", grid="GS-01", industry="health", credit_grade="A"),
    ]
    for row in rows:
        assert client.post("/api/v1/subjects", json=row, headers=eeb).status_code == 201

    def codes(**params: str | int | bool | list[str]) -> list[str]:
        r = client.get("/api/v1/subjects", params=params, headers=eeb)
        assert r.status_code == 200, r.text
        return [s["credit_code"] for s in r.json()["items"]]

    assert codes(grid="XH-03") == sorted([PLANT, DYEWORKS])
    assert codes(tag="key_polluter", grade="D") == [DYEWORKS]
    assert codes(tag=["key_polluter", "hazchem"]) == [PLANT]
    assert codes(grade=["A", "C"]) == sorted([PLANT, CLINIC])
    assert codes(industry="health") == [CLINIC]
    assert codes(q="dyework") == [DYEWORKS]
    assert codes(q=PLANT[:10]) == [PLANT]
    assert codes(name="side", order="name") == [CLINIC, PLANT]
    page = client.get("/api/v1/subjects", params={"limit": 2, "offset": 2}, headers=eeb).json()
    assert (page["total"], len(page["items"])) == (3, 1)
    assert codes(department="HLT") == []
    assert client.get("/api/v1/subjects", params={"grade": "E"}, headers=eeb).status_code == 422


def test_department_links_and_cross_department_library(
    client: TestClient, key: Key, service: SubjectsService
) -> None:
    eeb, hlt = key("EEB"), key("HLT")
    client.post("/api/v1/subjects", json=subject(PLANT, "p"), headers=eeb)
    client.post("/api/v1/subjects", json=subject(DYEWORKS, "d"), headers=eeb)

    def cross(headers: dict[str, str]) -> list[str]:
        r = client.get("/api/v1/subjects/cross-department", headers=headers)
        assert r.status_code == 200, r.text
        return [s["credit_code"] for s in r.json()["items"]]

    assert cross(eeb) == []
    # HLT could not see the subject; it asks to join, and EEB's admin consents.
    r = client.post(
        f"/api/v1/subjects/{PLANT}/departments", json={"department": "HLT"}, headers=hlt
    )
    assert r.status_code == 202, r.text
    r = client.post(f"/api/v1/link-requests/{r.json()['id']}/approve", headers=key("EEB", "admin"))
    assert r.status_code == 200, r.text
    assert r.json()["current"] is True
    assert cross(eeb) == [PLANT]
    assert cross(hlt) == [PLANT]
    assert service.directory.is_cross_department(PLANT)
    assert service.directory.departments(PLANT) == {"EEB", "HLT"}
    r = client.post(
        f"/api/v1/subjects/{PLANT}/departments", json={"department": "HLT"}, headers=hlt
    )
    assert r.status_code == 409
    assert "already supervises" in r.json()["detail"]
    # A shared subject cannot be deleted by one department.
    r = client.delete(f"/api/v1/subjects/{PLANT}", headers=eeb)
    assert r.status_code == 409
    assert "also supervised by HLT" in r.json()["detail"]
    # An officer may not link another department; an admin may.
    r = client.post(
        f"/api/v1/subjects/{DYEWORKS}/departments", json={"department": "AMR"}, headers=eeb
    )
    assert r.status_code == 422
    assert "admin" in r.json()["detail"]
    r = client.post(
        f"/api/v1/subjects/{DYEWORKS}/departments",
        json={"department": "AMR"},
        headers=key("EEB", "admin"),
    )
    assert r.status_code == 201
    r = client.post(
        f"/api/v1/subjects/{DYEWORKS}/departments",
        json={"department": "XXX"},
        headers=key("EEB", "admin"),
    )
    assert r.status_code == 422
    assert "not a known department" in r.json()["detail"]
    assert cross(eeb) == sorted([PLANT, DYEWORKS])

    r = client.delete(f"/api/v1/subjects/{PLANT}/departments/HLT", headers=hlt)
    assert r.status_code == 200
    assert r.json()["until"] is not None
    assert cross(eeb) == [DYEWORKS]
    assert client.get(f"/api/v1/subjects/{PLANT}", headers=hlt).status_code == 404
    assert not service.directory.is_cross_department(PLANT)
    history = client.get(f"/api/v1/subjects/{PLANT}/departments", headers=eeb).json()
    assert [(h["department"], h["current"]) for h in history] == [("EEB", True), ("HLT", False)]


def test_bindings(client: TestClient, key: Key, service: SubjectsService) -> None:
    eeb, amr = key("EEB"), key("AMR")
    # The platform admin (here seated in another department) binds new devices to any subject.
    platform = key("HLT", "platform_admin")
    client.post("/api/v1/subjects", json=subject(PLANT, "p", grid="XH-03"), headers=eeb)
    client.post("/api/v1/subjects", json=subject(CLINIC, "c"), headers=amr)

    for who in (eeb, key("EEB", "admin")):
        r = client.put(
            "/api/v1/devices/ww-1/binding",
            json={"credit_code": PLANT, "role": "wastewater_outlet"},
            headers=who,
        )
        assert r.status_code == 403, r.text
        assert "platform admin" in r.json()["detail"]
    r = client.put(
        "/api/v1/devices/ww-1/binding",
        json={"credit_code": PLANT, "role": "wastewater_outlet", "point": "DW001"},
        headers=platform,
    )
    assert r.status_code == 200, r.text
    assert r.json()["subject_name"] == "p"
    assert client.get("/api/v1/devices/ww-1/binding", headers=eeb).json()["role"] == (
        "wastewater_outlet"
    )
    ctx = service.directory.context("ww-1")
    assert ctx is not None
    assert (ctx.credit_code, ctx.role, ctx.grid) == (PLANT, "wastewater_outlet", "XH-03")
    # A role outside the documented set is fine if it matches the pattern; junk is not.
    r = client.put(
        "/api/v1/devices/ww-2/binding",
        json={"credit_code": PLANT, "role": "flow_meter"},
        headers=platform,
    )
    assert r.status_code == 200
    # The department's officer moves its own devices between its subjects.
    r = client.put(
        "/api/v1/devices/ww-2/binding",
        json={"credit_code": PLANT, "role": "flow_meter", "point": "DW002"},
        headers=eeb,
    )
    assert r.status_code == 200, r.text
    r = client.put(
        "/api/v1/devices/ww-3/binding",
        json={"credit_code": PLANT, "role": "Flow Meter!"},
        headers=eeb,
    )
    assert r.status_code == 422
    assert "role" in str(r.json()["detail"])
    r = client.put(
        "/api/v1/devices/bad%20id/binding", json={"credit_code": PLANT, "role": "tank"}, headers=eeb
    )
    assert r.status_code == 422
    assert "device id" in r.json()["detail"]
    # Another department neither sees nor takes over the device, nor binds to our subject.
    assert client.get("/api/v1/devices/ww-1/binding", headers=amr).status_code == 404
    r = client.put(
        "/api/v1/devices/ww-1/binding", json={"credit_code": CLINIC, "role": "tank"}, headers=amr
    )
    assert r.status_code == 404
    r = client.put(
        "/api/v1/devices/amr-1/binding", json={"credit_code": PLANT, "role": "tank"}, headers=amr
    )
    assert r.status_code == 404
    assert client.delete("/api/v1/devices/ww-1/binding", headers=amr).status_code == 404
    devices = client.get(f"/api/v1/subjects/{PLANT}/devices", headers=eeb).json()
    assert [d["device_id"] for d in devices] == ["ww-1", "ww-2"]

    assert client.delete("/api/v1/devices/ww-1/binding", headers=eeb).status_code == 200
    assert client.get("/api/v1/devices/ww-1/binding", headers=eeb).status_code == 404
    assert service.directory.context("ww-1") is None


def test_without_the_service_the_routes_answer_503(pool: object, key: Key) -> None:
    from prometheus_client import CollectorRegistry

    from api.app import create_app
    from api.context import ApiContext

    ctx = ApiContext(pool, CollectorRegistry(), lambda: {})  # type: ignore[arg-type]
    with TestClient(create_app(ctx)) as c:
        r = c.get("/api/v1/subjects", headers=key("EEB"))
    assert r.status_code == 503
    assert "SubjectsService" in r.json()["detail"]


def test_joining_a_subject_others_supervise_needs_their_consent(
    client: TestClient, key: Key, service: SubjectsService
) -> None:
    eeb, eeb_admin, hlt, hlt_admin = (
        key("EEB"),
        key("EEB", "admin"),
        key("HLT"),
        key("HLT", "admin"),
    )
    client.post("/api/v1/subjects", json=subject(PLANT, "p"), headers=eeb)
    link = f"/api/v1/subjects/{PLANT}/departments"
    # The takeover of the probe: an admin of HLT links itself to EEB's subject.
    r = client.post(link, json={"department": "HLT"}, headers=hlt_admin)
    assert r.status_code == 202, r.text
    request = r.json()
    assert (request["state"], request["department"]) == ("pending", "HLT")
    # Until consent HLT reads and edits nothing, and cannot ask twice.
    assert client.get(f"/api/v1/subjects/{PLANT}", headers=hlt).status_code == 404
    assert (
        client.patch(
            f"/api/v1/subjects/{PLANT}", json={"attributes": {"permit.cod_mg_l": 999}}, headers=hlt
        ).status_code
        == 404
    )
    assert client.delete(f"/api/v1/subjects/{PLANT}", headers=hlt_admin).status_code == 404
    assert client.delete(f"{link}/EEB", headers=hlt_admin).status_code == 404
    assert client.post(link, json={"department": "HLT"}, headers=hlt).status_code == 409
    assert service.directory.departments(PLANT) == {"EEB"}
    # The requester cannot approve itself; an EEB officer may not either; EEB sees it pending.
    approve = f"/api/v1/link-requests/{request['id']}/approve"
    assert client.post(approve, headers=hlt_admin).status_code == 404
    assert client.post(approve, headers=eeb).status_code == 422
    pending = client.get("/api/v1/link-requests?state=pending", headers=eeb).json()
    assert [p["id"] for p in pending] == [request["id"]]
    assert [p["id"] for p in client.get("/api/v1/link-requests", headers=hlt).json()] == [
        request["id"]
    ]
    assert client.get("/api/v1/link-requests", headers=key("AMR")).json() == []
    r = client.post(approve, json={"reason": "joint inspection plan 2026"}, headers=eeb_admin)
    assert r.status_code == 200, r.text
    assert service.directory.departments(PLANT) == {"EEB", "HLT"}
    assert client.post(approve, headers=eeb_admin).status_code == 409
    # A refused request links nothing.
    r = client.post(link, json={"department": "AMR"}, headers=key("AMR"))
    assert r.status_code == 202
    refuse = f"/api/v1/link-requests/{r.json()['id']}/refuse"
    assert client.post(refuse, headers=hlt_admin).json()["state"] == "refused"
    assert client.get(f"/api/v1/subjects/{PLANT}", headers=key("AMR")).status_code == 404
    # An admin of a supervising department links another department directly (consent).
    r = client.post(link, json={"department": "AMR"}, headers=eeb_admin)
    assert r.status_code == 201, r.text


def test_a_department_changes_only_its_own_link(client: TestClient, key: Key) -> None:
    eeb_admin, hlt_admin = key("EEB", "admin"), key("HLT", "admin")
    client.post("/api/v1/subjects", json=subject(PLANT, "p"), headers=key("EEB"))
    link = f"/api/v1/subjects/{PLANT}/departments"
    assert client.post(link, json={"department": "HLT"}, headers=eeb_admin).status_code == 201
    # Neither ends the other's supervision, and the shared subject cannot be deleted.
    r = client.delete(f"{link}/EEB", headers=hlt_admin)
    assert r.status_code == 422
    assert "only its own" in r.json()["detail"]
    assert client.delete(f"{link}/HLT", headers=eeb_admin).status_code == 422
    assert client.delete(f"/api/v1/subjects/{PLANT}", headers=hlt_admin).status_code == 409
    assert client.delete(f"/api/v1/subjects/{PLANT}", headers=eeb_admin).status_code == 409
    current = [h["department"] for h in client.get(link, headers=eeb_admin).json() if h["current"]]
    assert current == ["EEB", "HLT"]
    assert client.delete(f"{link}/HLT", headers=hlt_admin).status_code == 200


def test_a_future_link_of_another_department_blocks_delete(client: TestClient, key: Key) -> None:
    eeb_admin = key("EEB", "admin")
    client.post("/api/v1/subjects", json=subject(PLANT, "p"), headers=key("EEB"))
    soon = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    r = client.post(
        f"/api/v1/subjects/{PLANT}/departments",
        json={"department": "HLT", "since": soon},
        headers=eeb_admin,
    )
    assert r.status_code == 201, r.text
    r = client.delete(f"/api/v1/subjects/{PLANT}", headers=eeb_admin)
    assert r.status_code == 409
    assert "HLT" in r.json()["detail"]


def test_periods_cannot_start_in_the_past(client: TestClient, key: Key) -> None:
    eeb_admin = key("EEB", "admin")
    client.post("/api/v1/subjects", json=subject(PLANT, "p"), headers=key("EEB"))
    link = f"/api/v1/subjects/{PLANT}/departments"
    for since in (
        "2020-01-01T00:00:00+08:00",
        (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
    ):
        r = client.post(link, json={"department": "HLT", "since": since}, headers=eeb_admin)
        assert r.status_code == 422, r.text
        assert r.json()["detail"].startswith("since: must not be in the past")
    r = client.post(
        link, json={"department": "HLT", "since": datetime.now(UTC).isoformat()}, headers=eeb_admin
    )
    assert r.status_code == 201, r.text


def test_import_does_not_join_a_subject_others_supervise(
    client: TestClient, key: Key, service: SubjectsService
) -> None:
    client.post(
        "/api/v1/subjects",
        json=subject(PLANT, "p", attributes={"permit.cod_mg_l": 50}),
        headers=key("EEB"),
    )
    body = f"credit_code,name,attr.permit.cod_mg_l\n{PLANT},taken,999\n"
    r = client.post(
        "/api/v1/subjects/import",
        content=body,
        headers={**key("HLT", "admin"), "Content-Type": "text/csv"},
    )
    assert r.status_code == 422, r.text
    assert r.json()["report"]["errors"][0]["column"] == "credit_code"
    assert "supervised by other departments" in r.json()["report"]["errors"][0]["reason"]
    got = client.get(f"/api/v1/subjects/{PLANT}", headers=key("EEB")).json()
    assert got["attributes"] == {"permit.cod_mg_l": 50.0}
    assert got["departments"] == ["EEB"]
