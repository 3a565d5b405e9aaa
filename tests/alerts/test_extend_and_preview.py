"""Extending a silence and previewing a draw, over HTTP: validation names the field, answers
carry a stable refusal code, another department's silence is 404, every extension is audited."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from alerts.errors import DrawError, Refusal
from core.principal import Principal
from tests.alerts.conftest import Api
from tests.alerts.support import CHEM


def _silence(api: Api, hours: float = 2) -> dict[str, Any]:
    now = api.clock.now
    body = {
        "matcher": "subject",
        "value": CHEM,
        "starts_at": now.isoformat(),
        "ends_at": (now + timedelta(hours=hours)).isoformat(),
        "reason": "planned maintenance",
    }
    r = api.client.post("/api/v1/silences", json=body, headers=api.as_("EEB-officer"))
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def test_extend_moves_the_end_later_and_is_audited(api: Api) -> None:
    c, now = api.client, api.clock.now
    sid = _silence(api)["id"]
    new_end = now + timedelta(hours=26)
    r = c.post(f"/api/v1/silences/{sid}/extend", json={"ends_at": new_end.isoformat()},
               headers=api.as_("EEB-officer"))  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["ends_at"].startswith(new_end.strftime("%Y-%m-%dT%H:%M"))
    with api.service.pool.connection() as conn:
        entries = conn.execute(
            "SELECT actor, action, payload::jsonb->>'previous_ends_at', payload::jsonb->>'ends_at'"
            " FROM audit_log"
            " WHERE entity = 'silence' ORDER BY seq"
        ).fetchall()
    assert [e[1] for e in entries] == ["silence.created", "silence.extended"]
    actor, _, before, after = entries[1]
    assert actor.startswith("key:")  # the caller, as on every audit entry
    assert before is not None
    assert after is not None
    assert after > before


def test_extend_refusals_name_the_field_and_carry_a_code(api: Api) -> None:
    c, now = api.client, api.clock.now
    sid = _silence(api)["id"]
    officer = api.as_("EEB-officer")

    def extend(ends_at: str, who: dict[str, str] = officer) -> Any:
        return c.post(f"/api/v1/silences/{sid}/extend", json={"ends_at": ends_at}, headers=who)

    cases = [
        ((now + timedelta(hours=1)).isoformat(), Refusal.SILENCE_END_NOT_LATER),
        ((now - timedelta(minutes=1)).isoformat(), Refusal.SILENCE_END_IN_PAST),
        ((now + timedelta(days=91)).isoformat(), Refusal.SILENCE_TOO_LONG),
    ]
    for ends_at, code in cases:
        r = extend(ends_at)
        assert r.status_code == 422, (ends_at, r.text)
        assert r.json()["code"] == code.value
        assert "ends_at" in r.json()["detail"]
    r = extend("2026-12-01T08:00:00")  # no offset
    assert r.status_code == 422
    assert "ends_at" in r.text
    r = c.post(f"/api/v1/silences/{sid}/extend", json={}, headers=officer)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "ends_at"]
    later = (now + timedelta(hours=5)).isoformat()
    assert extend(later, api.as_("EMB-officer")).status_code == 404  # another department's
    assert extend(later, api.as_("EEB-viewer")).status_code == 403
    c.delete(f"/api/v1/silences/{sid}", headers=officer)
    r = extend(later)
    assert r.status_code == 422
    assert r.json()["code"] == Refusal.SILENCE_EXPIRED.value


def test_create_is_capped_like_extend(api: Api) -> None:
    now = api.clock.now
    body = {"matcher": "subject", "value": CHEM, "starts_at": now.isoformat(),
            "ends_at": (now + timedelta(days=120)).isoformat(), "reason": "x"}  # fmt: skip
    r = api.client.post("/api/v1/silences", json=body, headers=api.as_("EEB-officer"))
    assert r.status_code == 422
    assert r.json()["code"] == "silence_too_long"
    assert "ends_at" in r.json()["detail"]


def test_draw_preview_is_what_the_seed_then_stores(api: Api) -> None:
    c = api.client
    r = c.post("/api/v1/inspections/draws/preview", json={"seed": 42},
               headers=api.as_("EEB-officer"))  # fmt: skip
    assert r.status_code == 200, r.text
    preview = r.json()
    assert preview["department"] == "EEB"
    assert preview["population"] == sum(g["population"] for g in preview["grades"])
    assert preview["credit_codes"] == sorted(
        c for g in preview["grades"] for c in g["credit_codes"]
    )
    assert all(g["credit_codes"] for g in preview["grades"] if g["ratio"] > 0)  # rounds up
    with api.service.pool.connection() as conn:
        stored = conn.execute("SELECT count(*) FROM draws").fetchone()
    assert stored == (0,)  # a preview writes nothing
    r = c.post("/api/v1/inspections/draws", json={"period": "2026-Q4", "seed": 42},
               headers=api.as_("EEB-officer"))  # fmt: skip
    assert r.json()["credit_codes"] == preview["credit_codes"]
    assert c.post("/api/v1/inspections/draws/preview", json={"seed": -1},
                  headers=api.as_("EEB-officer")).status_code == 422  # fmt: skip
    assert c.post("/api/v1/inspections/draws/preview", json={"seed": 1},
                  headers=api.as_("EEB-viewer")).status_code == 403  # fmt: skip


def test_confirm_refuses_when_the_scope_changed_since_the_preview(api: Api) -> None:
    actor = Principal("zhangwei", "EEB")
    preview = api.service.preview_draw(actor, 7)
    stale = [*preview.codes, "91320500MA1ZZZZZ00"]
    with pytest.raises(DrawError) as refused:
        api.service.confirm_draw(actor, "2026-Q4", 7, stale)
    assert refused.value.code is Refusal.DRAW_SCOPE_CHANGED
    draw_id, codes = api.service.confirm_draw(actor, "2026-Q4", 7, preview.codes)
    assert codes == preview.codes
    assert draw_id > 0


def test_a_merge_without_a_draw_answers_its_code(api: Api) -> None:
    r = api.client.post("/api/v1/inspections/draws/merge", json={"period": "2030-Q1"},
                        headers=api.as_("AMR-officer"))  # fmt: skip
    assert r.status_code == 422
    assert r.json()["code"] == "draw_no_draw_in_period"
    assert "period" in r.json()["detail"]
