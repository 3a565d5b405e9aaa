"""The workbench in a real Chromium: board, alert page, actions, roles, narrow screens."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from ingest.topics import telemetry_topic
from offsite.app import OffsiteApp
from offsite.embedded import EmbeddedBroker
from tests.helpers import Publisher, one_row
from tests.web.conftest import SUBJECT, Workbench, page_for, wait_for_alert


def _breach(broker: EmbeddedBroker, device: str, value: float = 61) -> None:
    """One batch message: four quiet readings a second apart, then the breach (for the chart)."""
    now = int(time.time() * 1000)
    batch = [{"ts": now - (4 - i) * 1000, "values": {"lel": 10 + i}} for i in range(4)]
    batch.append({"ts": now, "values": {"lel": value}})
    pub = Publisher(broker.port)
    pub.publish(telemetry_topic(device), json.dumps(batch))
    pub.wait_acked(1)
    pub.close()


def raised(wb: Workbench, value: float = 61) -> int:
    """The site's device breaches (as `_breach`): the id of the alert, once raised."""
    _breach(wb.broker, wb.site["device"], value)
    return wait_for_alert(wb.db)


def test_breach_shows_live_on_board_and_opens_with_chart(wb: Workbench, tmp_path: Path) -> None:
    site, broker, db = wb.site, wb.broker, wb.db
    page = wb.page_as("officer", "/")
    page.wait_for_selector("#live.live", timeout=10_000)
    assert page.locator("#stale").is_hidden()
    _breach(broker, site["device"])
    row = page.locator("#alerts tr[data-alert-id]").first
    wait_for_alert(db)
    row.wait_for(timeout=20_000)
    page.wait_for_function(
        "document.querySelector('#alerts tr[data-alert-id]').dataset.severity === 'critical'",
        timeout=10_000,
    )
    text = row.inner_text()
    assert "苏州某化工有限公司" in text
    assert "严重" in text
    assert "待处理" in text
    assert "新" in text  # arrived after the page loaded
    assert page.title().startswith("(1) 告警看板")
    assert "更新于" in page.inner_text(".status-line")
    page.screenshot(path=str(tmp_path / "board.png"), full_page=True)
    row.locator("a.subject").click()
    page.wait_for_selector("#subject-card")
    assert "市应急局" in page.inner_text("#subject-card")
    assert "C（较差）" in page.inner_text("#subject-card")
    page.wait_for_selector(".chart[data-rendered]", timeout=10_000)
    assert int(page.locator(".chart").first.get_attribute("data-rendered") or 0) >= 1
    assert page.locator(".legal-basis").first.inner_text().strip() != ""
    page.screenshot(path=str(tmp_path / "alert.png"), full_page=True)


def test_acknowledge_and_dispatch_with_preview(wb: Workbench, tmp_path: Path) -> None:
    db = wb.db
    alert_id = raised(wb)
    page = wb.page_as("officer", f"/alerts/{alert_id}")
    page.fill("form[hx-post$='/ack'] input[name=note]", "值班已确认")
    page.click("#ack")
    page.wait_for_selector("#alert-state[data-state=acknowledged]", timeout=10_000)
    assert "已确认" in page.inner_text("#timeline")
    page.click("#dispatch")
    page.wait_for_selector("#dispatch-preview")
    preview = page.inner_text("#dispatch-preview")
    assert "联合检查" in preview
    assert "市应急局" in preview
    page.screenshot(path=str(tmp_path / "dispatch-preview.png"), full_page=True)
    page.click("#dispatch-confirm")
    page.wait_for_selector("#alert-state[data-state=dispatched]", timeout=10_000)
    page.screenshot(path=str(tmp_path / "dispatched.png"), full_page=True)
    sql = (
        "SELECT t.kind FROM tasks t JOIN task_alerts ta ON ta.task_id = t.id WHERE ta.alert_id = %s"
    )
    assert one_row(db, sql, alert_id) == ("joint",)


def test_dismiss_with_chinese_reason(wb: Workbench, tmp_path: Path) -> None:
    db = wb.db
    alert_id = raised(wb)
    page = wb.page_as("officer", f"/alerts/{alert_id}")
    page.click("summary:has-text('排除…')")
    page.select_option("#dismiss-form select[name=reason]", label="设备故障")
    page.fill("#dismiss-form textarea", "探头受潮，已报修")
    page.click("#dismiss-form button")
    page.wait_for_selector("#alert-state[data-state=dismissed]", timeout=10_000)
    assert "设备故障" in page.inner_text("main")
    page.screenshot(path=str(tmp_path / "dismissed.png"), full_page=True)
    row = db.execute("SELECT dismiss_reason FROM alerts WHERE id = %s", (alert_id,)).fetchone()
    assert row == ("device_fault",)
    page.fill("form[hx-post$='/reopen'] input[name=note]", "复查仍有报警")
    page.click("#reopen")
    page.wait_for_selector("#alert-state[data-state=open]", timeout=10_000)
    assert "重开 ×1" in page.inner_text("h1")


def test_silence_from_an_alert_with_preview(wb: Workbench, tmp_path: Path) -> None:
    db = wb.db
    alert_id = raised(wb)
    page = wb.page_as("officer", f"/alerts/{alert_id}")
    page.click("summary:has-text('静默…')")
    # The rule is offered by its Chinese title, its id beside it for the record.
    rule_option = page.locator("#silence-form select[name=target] option").first
    text = rule_option.inner_text()
    assert text.startswith("该规则: "), text
    title, rule_id = text.removeprefix("该规则: ").rsplit(" (", 1)
    assert re.search("[\u4e00-\u9fff]", title), title
    assert rule_option.get_attribute("value") == f"rule:{rule_id.rstrip(')')}"
    page.select_option("#silence-form select[name=hours]", "4")
    page.fill("#silence-form input[name=reason]", "设备检修期间")
    page.click("#silence-form button")
    page.wait_for_selector("#silence-preview")
    assert "1" in page.inner_text("#silence-preview .affected")
    page.screenshot(path=str(tmp_path / "silence-preview.png"), full_page=True)
    page.click("#silence-confirm")
    page.wait_for_url("**/silences", timeout=10_000)
    assert "设备检修期间" in page.inner_text("#silences")
    page.screenshot(path=str(tmp_path / "silences.png"), full_page=True)
    page.click("#silences button.expire")
    page.wait_for_selector("#silences:has-text('提前结束')")
    row = db.execute("SELECT expired_at IS NOT NULL FROM silences").fetchone()
    assert row == (True,)


def test_viewer_sees_no_action_buttons(wb: Workbench, tmp_path: Path) -> None:
    base = wb.base
    alert_id = raised(wb)
    page = wb.page_as("viewer", "/")
    page.locator("#alerts tr[data-alert-id]").first.wait_for(timeout=10_000)
    assert page.locator("#alerts button").count() == 0
    page.goto(f"{base}/alerts/{alert_id}")
    page.wait_for_selector("#subject-card")
    assert page.locator("#actions").count() == 0
    assert page.locator("main button:not(dialog button)").count() == 0
    page.screenshot(path=str(tmp_path / "viewer.png"), full_page=True)
    page.goto(f"{base}/map")
    page.wait_for_selector("#map[data-markers='1']")
    assert "严重" in page.inner_text("#map-list")
    page.screenshot(path=str(tmp_path / "map.png"), full_page=True)


def test_no_page_scrolls_sideways_at_390px(wb: Workbench, tmp_path: Path) -> None:
    site, browser, base = wb.site, wb.browser, wb.base
    alert_id = raised(wb)
    page = page_for(browser, site["officer"], width=390, height=844)
    for i, path in enumerate(["/", f"/alerts/{alert_id}", "/tasks", "/subjects",
                              f"/subjects/{SUBJECT}", "/devices", "/map", "/rules", "/silences",
                              "/notifications", "/audit"]):  # fmt: skip
        page.goto(f"{base}{path}")
        page.wait_for_load_state("load")
        wide = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        page.screenshot(path=str(tmp_path / f"narrow-{i}.png"), full_page=True)
        assert wide <= 0, f"{path} scrolls sideways by {wide}px at 390 px"


def test_other_departments_ids_answer_404(
    site: dict[str, str],
    running: OffsiteApp,
    broker: EmbeddedBroker,
    db: psycopg.Connection[Any],
) -> None:
    _breach(broker, site["device"])
    alert_id = wait_for_alert(db)
    base = running.endpoints.http
    outsider = {"Authorization": f"Bearer {site['outsider']}"}
    with httpx.Client(base_url=base, headers=outsider) as c:
        assert c.get(f"/alerts/{alert_id}").status_code == 404
        assert c.get(f"/alerts/{alert_id}/clues/1/chart").status_code == 404
        assert c.get(f"/subjects/{SUBJECT}").status_code == 404
        assert c.post(f"/alerts/{alert_id}/ack").status_code == 404
    officer = {"Authorization": f"Bearer {site['officer']}"}
    with httpx.Client(base_url=base, headers=officer) as c:
        zh = c.get("/")
        assert "告警看板" in zh.text
        en = c.get("/?lang=en")  # the switch: English, and kept in a cookie
        assert "Alert board" in en.text
        assert "告警看板" not in en.text
        assert "offsite_lang=en" in en.headers["set-cookie"]
        assert "Tasks" in c.get("/tasks").text  # the cookie carries the choice on
    with httpx.Client(base_url=base) as c:
        r = c.get("/", follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"] == "/login?next=%2F"
        assert c.get("/docs").status_code == 200
        assert "securitySchemes" in c.get("/openapi.json").json()["components"]


def test_alert_page_shows_evidence_once_verified_and_large(wb: Workbench, tmp_path: Path) -> None:
    running, db = wb.app, wb.db
    import cv2
    from skimage import data

    from video.evidence import detection_json
    from video.frames import EpisodeUpdate
    from video.models import Box, Detection
    from video.service import VideoService
    from video.snapshot import FaceBlurrer, make_snapshot

    alert_id = raised(wb)
    # A real snapshot stored by the running video service (hashed at capture). Which camera
    # detection links it to a clue is the video and rules tests' business; here the clues of
    # this alert cite it, as a camera clue on the same subject would.
    assert running.api_context is not None
    svc = running.api_context.get(VideoService)
    image = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    update = EpisodeUpdate("person", 0.9, Box(100, 20, 300, 480), "gate", "ep-1", 3, True)
    snap = make_snapshot(image, update, FaceBlurrer(), 90)
    captured = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
    det = Detection("cam-gate", "person", 0.9, update.box, "gate", captured, "ep-1", 3)
    evidence = svc.evidence.store("cam-gate", captured, snap, [detection_json(det)])
    db.execute(
        "UPDATE alert_clues SET evidence_ids = %s WHERE alert_id = %s", ([evidence], alert_id)
    )
    page = wb.page_as("officer", f"/alerts/{alert_id}")
    figures = page.locator("#evidence figure.evidence")
    assert figures.count() == 1  # cited by both clues, shown once
    page.wait_for_function(
        "document.querySelector('#evidence img').naturalWidth > 0", timeout=10_000
    )
    caption = figures.first.inner_text()
    assert "SHA-256 校验通过" in caption
    assert "2026-11-26 11:00:00" in caption  # 03:00 UTC in Asia/Shanghai
    page.click("#evidence img")
    page.wait_for_selector("dialog#large[open]")
    page.screenshot(path=str(tmp_path / "evidence-large.png"), full_page=True)
