"""GET /api/v1/stream over a real HTTP server: department scoping and Last-Event-ID resume."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from rules.models import ClueStatus, Severity
from tests.alerts.conftest import Api
from tests.alerts.support import CHEM, PLANT, Reader, clue
from tests.helpers import serving


@pytest.fixture
def served(api: Api) -> Iterator[tuple[Api, str]]:
    with serving(api.client.app) as port:
        yield api, f"http://127.0.0.1:{port}"
        api.service.stop()  # ends open streams, as the composition root does before HTTP stops


def test_stream_is_scoped_and_resumes_after_last_event_id(served: tuple[Api, str]) -> None:
    api, base = served
    store, pool = api.service.store, api.service.pool
    with pool.connection() as conn:
        store.apply_clue(conn, clue(PLANT, "EEB", Severity.WARNING, clue_id=1))  # before: unseen
    eeb = Reader(f"{base}/api/v1/stream", api.as_("EEB-viewer"))
    emb = Reader(f"{base}/api/v1/stream", api.as_("EMB-viewer"))
    eeb.wait_connected()
    emb.wait_connected()
    with pool.connection() as conn:
        store.apply_clue(conn, clue(PLANT, "EEB", Severity.MAJOR, clue_id=2, rule_id="r2"))
        store.apply_clue(conn, clue(CHEM, "EMB", Severity.CRITICAL, clue_id=3, rule_id="gas"))
    # EEB sees the clue and the alert update on its subject, and nothing of EMB's.
    frames = eeb.wait(2)
    time.sleep(0.3)
    frames = list(eeb.frames)
    assert {f.event for f in frames} == {"clue", "alert"}
    assert {f.data["subject_key"] for f in frames} == {PLANT}
    assert [f.data.get("clue_id") for f in frames if f.event == "clue"] == [2]
    emb_frames = emb.wait(3)
    assert {f.data["subject_key"] for f in emb_frames} == {CHEM}
    assert {f.event for f in emb_frames} == {"alert", "clue"}
    last = frames[-1].id
    eeb.close()
    emb.close()
    # While EEB is away: its alert is acknowledged and a clue resolves.
    alert_id = next(f.data["id"] for f in frames if f.event == "alert")
    r = api.client.post(f"/api/v1/alerts/{alert_id}/ack", headers=api.as_("EEB-officer"))
    assert r.status_code == 200
    with pool.connection() as conn:
        store.apply_clue(
            conn, clue(PLANT, "EEB", status=ClueStatus.RESOLVED, clue_id=2, rule_id="r2")
        )
    again = Reader(f"{base}/api/v1/stream", {**api.as_("EEB-viewer"), "Last-Event-ID": str(last)})
    missed = again.wait(3)
    again.close()
    assert all(f.id > last for f in missed)
    assert [f.id for f in missed] == sorted(f.id for f in missed)
    assert missed[0].event == "alert"
    assert missed[0].data["action"] == "acknowledge"
    assert ("clue", "updated") in {(f.event, f.data["action"]) for f in missed}
    assert {f.data["subject_key"] for f in missed} == {PLANT}


def test_stream_needs_a_key_and_a_numeric_last_event_id(api: Api) -> None:
    assert api.client.get("/api/v1/stream").status_code == 401
    r = api.client.get("/api/v1/stream", headers={**api.as_("EEB-viewer"), "Last-Event-ID": "x"})
    assert r.status_code == 422
