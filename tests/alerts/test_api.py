"""The alerts API: filters, detail, actions, tasks, silences, notifications; department scope."""

from __future__ import annotations

from datetime import timedelta

from rules.models import ClueStatus, Severity
from tests.alerts.conftest import Api
from tests.alerts.support import CHEM, PLANT, SHOP, clue


def test_list_filters_and_department_scoping(api: Api) -> None:
    store, pool = api.service.store, api.service.pool
    with pool.connection() as conn:
        store.apply_clue(conn, clue(CHEM, "EMB", Severity.CRITICAL, rule_id="r-lel"))
        api.clock.advance(60)
        store.apply_clue(conn, clue(PLANT, "EEB", Severity.WARNING))
        api.clock.advance(60)
        store.apply_clue(conn, clue(SHOP, "AMR", Severity.MAJOR))
    c = api.client
    eeb = c.get("/api/v1/alerts", headers=api.as_("EEB-viewer")).json()
    assert [a["subject_key"] for a in eeb] == [PLANT]
    emb = c.get("/api/v1/alerts", headers=api.as_("EMB-viewer")).json()
    assert [(a["subject_key"], a["severity"], a["grid"]) for a in emb] == [
        (CHEM, "critical", "G-01")
    ]
    amr = api.as_("AMR-viewer")
    assert (
        c.get("/api/v1/alerts", params={"grid": "G-03"}, headers=amr).json()[0]["subject_key"]
        == SHOP
    )
    assert c.get("/api/v1/alerts", params={"grid": "G-01"}, headers=amr).json() == []
    assert c.get("/api/v1/alerts", params={"severity": ["warning"]}, headers=amr).json() == []
    both = {"state": ["open"], "severity": ["major", "critical"]}
    assert len(c.get("/api/v1/alerts", params=both, headers=amr).json()) == 1
    since = (api.clock.now - timedelta(seconds=30)).isoformat()
    assert len(c.get("/api/v1/alerts", params={"since": since}, headers=amr).json()) == 1
    assert c.get("/api/v1/alerts", params={"subject": CHEM}, headers=amr).json() == []
    # Another department's alert answers 404, for reads and for writes.
    emb_id = emb[0]["id"]
    assert c.get(f"/api/v1/alerts/{emb_id}", headers=api.as_("EEB-viewer")).status_code == 404
    assert c.post(f"/api/v1/alerts/{emb_id}/ack", headers=api.as_("EEB-officer")).status_code == 404
    assert c.get("/api/v1/alerts").status_code == 401


def test_detail_actions_and_errors(api: Api) -> None:
    with api.service.pool.connection() as conn:
        out = api.service.store.apply_clue(conn, clue(CHEM, "EEB", Severity.MAJOR))
        api.service.store.apply_clue(conn, clue(CHEM, "EMB", Severity.WARNING, rule_id="r-lel"))
    assert out.alert is not None
    aid, c = out.alert.id, api.client
    detail = c.get(f"/api/v1/alerts/{aid}", headers=api.as_("EEB-viewer")).json()
    assert [cl["rule_id"] for cl in detail["clues"]] == ["r-cod", "r-lel"]
    assert detail["clues"][0]["evidence_ids"] == ["sha256:" + "ab" * 32]
    assert [t["kind"] for t in detail["timeline"]][:2] == ["opened", "clue_added"]
    # Viewers cannot act; officers can.
    assert c.post(f"/api/v1/alerts/{aid}/ack", headers=api.as_("EEB-viewer")).status_code == 403
    r = c.post(f"/api/v1/alerts/{aid}/ack", headers=api.as_("EEB-officer"))
    assert r.status_code == 200
    assert r.json()["alert"]["acknowledged_by"].startswith("key:")
    r = c.post(f"/api/v1/alerts/{aid}/ack", headers=api.as_("EMB-officer"))
    assert r.status_code == 409
    assert r.json()["detail"]["code"] == "not_allowed"
    r = c.post(f"/api/v1/alerts/{aid}/dispatch", headers=api.as_("EMB-officer"))
    assert r.status_code == 200
    task = r.json()["task"]
    assert (task["kind"], task["lead_department"], task["departments"]) == (
        "joint",
        "EMB",
        ["EEB", "EMB"],
    )
    r = c.post(f"/api/v1/alerts/{aid}/dismiss", json={}, headers=api.as_("EEB-officer"))
    assert r.status_code == 422
    r = c.post(
        f"/api/v1/alerts/{aid}/dismiss", json={"reason": "other"}, headers=api.as_("EEB-officer")
    )
    assert r.status_code == 409
    assert r.json()["detail"]["code"] == "note_required"
    r = c.post(f"/api/v1/alerts/{aid}/dismiss", json={"reason": "permitted_activity",
               "note": "licensed test burn"}, headers=api.as_("EEB-officer"))  # fmt: skip
    assert r.status_code == 200
    assert r.json()["alert"]["dismiss_reason"] == "permitted_activity"
    r = c.post(f"/api/v1/alerts/{aid}/reopen", headers=api.as_("EEB-officer"))
    assert r.json()["alert"]["state"] == "open"
    r = c.post(f"/api/v1/alerts/{aid}/resolve", json={"note": "operator fixed the valve"},
               headers=api.as_("EMB-officer"))  # fmt: skip
    assert (r.json()["alert"]["state"], r.json()["alert"]["close_note"]) == (
        "resolved", "operator fixed the valve")  # fmt: skip
    r = c.post(f"/api/v1/alerts/{aid}/resolve", json={"bogus": 1}, headers=api.as_("EEB-officer"))
    assert r.status_code == 422


def test_tasks_routes(api: Api) -> None:
    with api.service.pool.connection() as conn:
        api.service.store.apply_clue(conn, clue(CHEM, "EEB"))
        out = api.service.store.apply_clue(conn, clue(CHEM, "EMB", rule_id="r-lel"))
    assert out.alert is not None
    c = api.client
    task = c.post(f"/api/v1/alerts/{out.alert.id}/dispatch", headers=api.as_("EEB-officer")).json()[
        "task"
    ]
    tid = task["id"]
    assert [t["id"] for t in c.get("/api/v1/tasks", headers=api.as_("EMB-viewer")).json()] == [tid]
    assert c.get("/api/v1/tasks", headers=api.as_("AMR-viewer")).json() == []
    assert c.get(f"/api/v1/tasks/{tid}", headers=api.as_("AMR-viewer")).status_code == 404
    r = c.patch(
        f"/api/v1/tasks/{tid}", json={"status": "in_progress"}, headers=api.as_("EEB-officer")
    )
    assert r.json()["status"] == "in_progress"
    r = c.patch(f"/api/v1/tasks/{tid}", json={"status": "done"}, headers=api.as_("EMB-officer"))
    assert r.status_code == 409
    assert r.json()["detail"]["code"] == "findings_required"
    r = c.patch(f"/api/v1/tasks/{tid}", json={"status": "done", "findings": "tank level sensor"
                " recalibrated; no leak"}, headers=api.as_("EMB-officer"))  # fmt: skip
    assert r.json()["status"] == "done"
    assert r.json()["done_at"] is not None
    done = c.get("/api/v1/tasks", params={"status": "done"}, headers=api.as_("EEB-viewer"))
    assert done.json()[0]["findings"].startswith("tank")
    alert = c.get(f"/api/v1/alerts/{out.alert.id}", headers=api.as_("EEB-viewer")).json()
    assert alert["state"] == "resolved"


def test_silences_crud_is_scoped_and_audited(api: Api) -> None:
    c, now = api.client, api.clock.now
    body = {
        "matcher": "subject",
        "value": CHEM,
        "starts_at": now.isoformat(),
        "ends_at": (now + timedelta(hours=2)).isoformat(),
        "reason": "planned maintenance",
    }
    r = c.post("/api/v1/silences", json=body, headers=api.as_("EEB-officer"))
    assert r.status_code == 201
    sid = r.json()["id"]
    assert r.json()["created_by"].startswith("key:")
    bad = {**body, "ends_at": now.isoformat()}
    r = c.post("/api/v1/silences", json=bad, headers=api.as_("EEB-officer"))
    assert r.status_code == 422
    assert "ends_at must be later" in r.text
    assert c.get(f"/api/v1/silences/{sid}", headers=api.as_("EMB-viewer")).status_code == 404
    assert c.delete(f"/api/v1/silences/{sid}", headers=api.as_("EMB-officer")).status_code == 404
    r = c.patch(f"/api/v1/silences/{sid}", json={"reason": "maintenance extended"},
                headers=api.as_("EEB-officer"))  # fmt: skip
    assert r.json()["reason"] == "maintenance extended"
    r = c.delete(f"/api/v1/silences/{sid}", headers=api.as_("EEB-officer"))
    assert r.json()["expired_at"] is not None
    listed = c.get("/api/v1/silences", headers=api.as_("EEB-viewer")).json()
    assert [s["id"] for s in listed] == [sid]
    with api.service.pool.connection() as conn:
        actions = [r[0] for r in conn.execute(
            "SELECT action FROM audit_log WHERE entity = 'silence' ORDER BY seq")]  # fmt: skip
    assert actions == ["silence.created", "silence.updated", "silence.expired"]


def test_notifications_listing_shows_statuses(api_factory: object) -> None:
    from alerts.settings import AlertsSettings, NotificationRoute

    route = NotificationRoute(name="eeb-hook", kind="webhook", url="http://127.0.0.1:9/x",
                              secret="s", department="EEB")  # fmt: skip
    api: Api = api_factory(AlertsSettings(routes=[route]))  # type: ignore[operator]
    with api.service.pool.connection() as conn:
        api.service.store.apply_clue(conn, clue(PLANT, "EEB", Severity.MAJOR))
        api.service.store.apply_clue(
            conn, clue(PLANT, "EEB", status=ClueStatus.RESOLVED, clue_id=999)
        )
    rows = api.client.get("/api/v1/notifications", headers=api.as_("EEB-viewer")).json()
    assert [(n["route"], n["event"], n["status"]) for n in rows] == [
        ("eeb-hook", "opened", "pending")
    ]
    assert api.client.get("/api/v1/notifications", headers=api.as_("EMB-viewer")).json() == []
