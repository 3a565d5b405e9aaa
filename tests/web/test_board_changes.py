"""The board's live updates fetch only what changed (/board/changes), in a real Chromium."""

from __future__ import annotations

import re
from typing import Any

import httpx
import psycopg

from offsite.app import OffsiteApp
from subjects.credit_code import make
from tests.web.conftest import Workbench, page_for
from tests.web.test_board import raised

ROW = re.compile(r'<tr data-alert-id="(\d+)"')
_made = iter(range(1, 10_000))


def _open_alerts(db: psycopg.Connection[Any], n: int, departments: str = "{EMB}") -> list[int]:
    """`n` open alerts on subjects of their own, the newest last."""
    ids = []
    for i in range(n):
        code = make("9", "1", "320500", f"CH{next(_made):06d}")
        db.execute(
            "INSERT INTO subjects (credit_code, name, grid) VALUES (%s, %s, 'G-01')",
            (code, f"看板企业{i}"),
        )
        row = db.execute(
            "INSERT INTO alerts (subject_key, credit_code, state, severity, departments, grid,"
            " opened_at, updated_at) VALUES (%s, %s, 'open', 'major', %s, 'G-01',"
            " now() - make_interval(secs => %s), now()) RETURNING id",
            (code, code, departments, 600 - i),
        ).fetchone()
        assert row is not None
        ids.append(int(row[0]))
    return ids


def _order(html: str) -> list[int]:
    found = re.search(r'id="board-order" data-ids="([0-9,]*)"', html)
    assert found is not None, html
    return [int(i) for i in found.group(1).split(",") if i]


def test_changes_send_the_order_and_only_the_changed_rows(
    site: dict[str, str], running: OffsiteApp, db: psycopg.Connection[Any]
) -> None:
    mine = _open_alerts(db, 3)
    (theirs,) = _open_alerts(db, 1, "{AMR}")
    base = running.endpoints.http
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {site['officer']}"}) as c:
        whole = c.get("/board/rows")
        shown = [int(i) for i in ROW.findall(whole.text)]
        assert shown == mine[::-1]  # newest first
        have = ",".join(map(str, shown))
        r = c.get("/board/changes", params={"changed": str(mine[0]), "have": have})
        assert r.status_code == 200
        assert _order(r.text) == shown
        assert [int(i) for i in ROW.findall(r.text)] == [mine[0]]  # only the changed row
        assert 'data-open="3"' in r.text
        # A new alert the tab does not hold: sent although nobody named it, and first.
        (new,) = _open_alerts(db, 1)
        db.execute("UPDATE alerts SET opened_at = now() WHERE id = %s", (new,))
        r = c.get("/board/changes", params={"changed": str(new), "have": have})
        assert _order(r.text) == [new, *shown]
        assert [int(i) for i in ROW.findall(r.text)] == [new]
        assert 'data-open="4"' in r.text
        # Another department's alert is neither rendered nor ordered, though named.
        have = ",".join(map(str, [new, *shown]))
        r = c.get("/board/changes", params={"changed": str(theirs), "have": have})
        assert theirs not in _order(r.text)
        assert ROW.findall(r.text) == []
        # Filters apply as on the whole list.
        r = c.get("/board/changes", params={"changed": str(new), "severity": "critical"})
        assert _order(r.text) == []
        # Bad lists are refused with the page's Chinese error, not a 500.
        for bad in ("abc", "1,,x", "-3", ",".join(["1"] * 201 + [str(i) for i in range(2, 202)])):
            r = c.get("/board/changes", params={"changed": bad})
            assert r.status_code == 422, bad
            assert 'data-code="invalid"' in r.text
        # A page past the end (the list shrank under a tab) answers the last page.
        r = c.get("/board/rows", params={"page": "9"})
        assert "第 1 / 1 页" in r.text
        assert [int(i) for i in ROW.findall(r.text)] == [new, *shown]


def test_live_events_patch_the_rows_in_place(wb: Workbench) -> None:
    site, db, browser, base = wb.site, wb.db, wb.browser, wb.base
    earlier = _open_alerts(db, 2)
    page = page_for(browser, site["officer"])
    lists: list[str] = []
    page.on("request", lambda r: lists.append(r.url) if "/board/" in r.url else None)
    page.goto(f"{base}/")
    page.wait_for_selector("#live.live", timeout=10_000)
    page.wait_for_function("document.title.startsWith('(2)')", timeout=10_000)
    lists.clear()  # the reload on connecting is the whole list; what follows is not
    alert_id = raised(wb)
    first = page.locator("#alerts tbody tr").first
    page.wait_for_function(
        f"document.querySelector('#alerts tbody tr').dataset.alertId === '{alert_id}'",
        timeout=20_000,
    )
    page.wait_for_function("document.title.startsWith('(3)')", timeout=10_000)
    assert "新" in first.inner_text()  # arrived after the page opened
    assert "苏州某化工有限公司" in first.inner_text()
    ids = page.eval_on_selector_all(
        "#alerts tr[data-alert-id]", "rs => rs.map(r => r.dataset.alertId)"
    )
    assert ids == [str(alert_id), *map(str, earlier[::-1])]
    # Acknowledging from the row: the row changes in place and its button goes.
    page.click(f"#alerts tr[data-alert-id='{earlier[0]}'] button.ack")
    page.wait_for_selector(
        f"#alerts tr[data-alert-id='{earlier[0]}'][data-state=acknowledged]", timeout=10_000
    )
    assert page.locator(f"#alerts tr[data-alert-id='{earlier[0]}'] button.ack").count() == 0
    page.wait_for_function("document.title.startsWith('(2)')", timeout=10_000)
    assert "已确认 1" in page.inner_text("#board-counts")
    assert lists
    assert all("/board/changes?" in u for u in lists), lists
    assert page.locator("#stale").is_hidden()
