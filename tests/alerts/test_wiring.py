"""The composition root runs alerts: subject edits land in the audit chain in their transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import psycopg

from alerts import audit
from alerts.service import AlertService
from api.auth import create_key
from offsite.app import OffsiteApp
from subjects.credit_code import make


def test_subject_edits_are_audited_through_the_running_app(
    make_settings: Callable[..., Any], db: psycopg.Connection[Any]
) -> None:
    code = make("9", "1", "330100", "71610585")
    headers = {"Authorization": f"Bearer {create_key(db, 'EEB', 'officer')}"}
    with OffsiteApp(make_settings()) as app:
        assert app.api_context is not None
        assert isinstance(app.api_context.get(AlertService), AlertService)
        base = f"http://127.0.0.1:{app.http_port}/api/v1"
        r = httpx.post(f"{base}/subjects", json={"credit_code": code, "name": "p"}, headers=headers)
        assert r.status_code == 201, r.text
        r = httpx.patch(f"{base}/subjects/{code}", json={"grid": "G-9"}, headers=headers)
        assert r.status_code == 200, r.text
        r = httpx.get(f"{base}/alerts", headers=headers)
        assert r.status_code == 200
        assert r.json() == []
    rows = db.execute(
        "SELECT entity, entity_id, action, payload FROM audit_log ORDER BY seq"
    ).fetchall()
    assert [(e, i) for e, i, _a, _p in rows] == [("subject", code)] * len(rows)
    actions = [a for _e, _i, a, _p in rows]
    assert actions[0] == "subject.created"
    assert "subject.updated" in actions
    assert '"grid":"G-9"' in rows[actions.index("subject.updated")][3]
    assert audit.verify(db).ok
