"""Every page of the workbench, walked by an officer and a department admin at 1280 px and
390 px: each answers 200, nothing scrolls sideways, and the visible text of the page is
Chinese (data such as codes and ids aside). A screenshot of each is saved."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import wait_until
from tests.web.conftest import SUBJECT, Workbench, person, signed_in
from tests.web.test_board import raised

# Latin words that are data or names, not prose an officer should read in English.
DATA = re.compile(
    r"^(offsite|English|SHA-256|UTC|Asia/Shanghai|HTTP|lel|ppm|mg/L|%LEL|GB/T|PM2\.5|kW|g/m|"
    r"[A-Z]{1,4}-?[0-9]*|[a-z]+(?:[-_.][a-z0-9]+)+|[A-Za-z0-9]*\d[A-Za-z0-9]*)$"
)

# Names shown as they are: the map library's credit, a command operators type.
NAMES = ("Leaflet", "offsite audit checkpoint")


def _english(page: Any) -> list[str]:
    """Latin words in the visible text of <main> that are not data (ids, codes, units)."""
    text = page.inner_text("main")
    for name in NAMES:
        text = text.replace(name, " ")
    words = re.findall(r"[A-Za-z][A-Za-z0-9/_.%-]*[A-Za-z0-9]|[A-Za-z]{2,}", text)
    return sorted({w for w in words if not DATA.match(w)})


def _pages(alert_id: int, task_id: int, rule_id: str) -> list[tuple[str, str]]:
    return [
        ("board", "/"),
        ("alert", f"/alerts/{alert_id}"),
        ("tasks", "/tasks"),
        ("task", f"/tasks/{task_id}"),
        ("subjects", "/subjects"),
        ("subject", f"/subjects/{SUBJECT}"),
        ("devices", "/devices"),
        ("map", "/map"),
        ("rules", "/rules"),
        ("dry-run", f"/rules/{rule_id}/dry-run?hours=6"),
        ("silences", "/silences"),
        ("notifications", "/notifications"),
        ("audit", "/audit"),
        ("draws", "/draws"),
    ]


def test_officer_and_admin_walk_every_page_at_1280_and_390_px(
    wb: Workbench, tmp_path: Path
) -> None:
    site, db, browser, base = wb.site, wb.db, wb.browser, wb.base
    alert_id = raised(wb)
    officer_key = {"Authorization": f"Bearer {site['officer']}"}
    r = httpx.post(f"{base}/api/v1/alerts/{alert_id}/dispatch", headers=officer_key)
    assert r.status_code == 200, r.text
    task = wait_until(
        lambda: db.execute("SELECT id FROM tasks ORDER BY id LIMIT 1").fetchone(),
        what="the dispatched task",
    )
    rule = db.execute(
        "SELECT rule_id FROM alert_clues WHERE alert_id = %s LIMIT 1", (alert_id,)
    ).fetchone()
    assert rule is not None
    found: list[str] = []
    for who, role in (("officer", "officer"), ("admin", "admin")):
        login = person(db, "张伟" if role == "officer" else "刘洋", "EMB", role)
        for width in (1280, 390):
            page = signed_in(browser, base, login, width=width)
            for name, path in _pages(alert_id, int(task[0]), str(rule[0])):
                response = page.goto(f"{base}{path}")
                assert response is not None
                page.wait_for_load_state("networkidle")
                shot = tmp_path / f"{who}-{width}-{name}.png"
                page.screenshot(path=str(shot), full_page=True)
                where = f"{who} {width}px {path}"
                if response.status != 200:
                    found.append(f"{where}: HTTP {response.status}")
                wide = page.evaluate(
                    "document.documentElement.scrollWidth - document.documentElement.clientWidth"
                )
                if wide > 0:
                    found.append(f"{where}: scrolls sideways by {wide} px")
                english = _english(page)
                if english:
                    found.append(f"{where}: English {english}")
            page.context.close()
    assert found == [], "\n".join(found)
