"""Officers' work beyond the alert itself, in a real Chromium against a running offsite: the
board's sound and desktop notification, the outbox's retry of a dead webhook, the audit
chain's verify result, extending a silence, and a double-random draw merged into joint
inspections. Every person here signs in through /login, so every form carries CSRF."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import psycopg
import pytest

from ingest.topics import telemetry_topic
from offsite.embedded import EmbeddedBroker
from subjects.credit_code import make
from tests.helpers import Publisher, wait_until
from tests.web.conftest import (
    SUBJECT,
    Workbench,
    page_for,
    person,
    signed_in,
    wait_for_alert,
    webhook_alerts,
)


def _breach(broker: EmbeddedBroker, device: str, value: float = 61) -> None:
    pub = Publisher(broker.port)
    pub.publish(telemetry_topic(device), json.dumps({"ts": int(time.time() * 1000),
                                                     "values": {"lel": value}}))  # fmt: skip
    pub.wait_acked(1)
    pub.close()


# Records what the board does with the real Notification and Web Audio objects, without
# replacing what they do: the subclass calls the real constructor, start() the real start().
OBSERVE = """
(() => {
  const seen = window.__seen = {notifications: [], shown: 0, failed: 0, tones: [], contexts: []};
  const Real = window.Notification;
  if (Real) {
    class Observed extends Real {
      constructor(title, options) {
        super(title, options);
        seen.notifications.push({title: title, body: options && options.body});
        this.addEventListener("show", () => { seen.shown += 1; });
        this.addEventListener("error", () => { seen.failed += 1; });
      }
    }
    window.Notification = Observed;
  }
  const start = OscillatorNode.prototype.start;
  OscillatorNode.prototype.start = function (...args) {
    seen.tones.push(this.frequency.value);
    seen.contexts.push(this.context);
    return start.apply(this, args);
  };
})();
"""


def test_critical_alert_sounds_and_shows_a_desktop_notification(
    wb: Workbench, tmp_path: Path
) -> None:
    site, broker, db, browser, base = wb.site, wb.broker, wb.db, wb.browser, wb.base
    login = person(db, "张伟", "EMB")
    page = signed_in(browser, base, login, permissions=["notifications"])
    page.context.add_init_script(OBSERVE)
    page.reload()
    page.wait_for_selector("#live.live", timeout=10_000)
    assert page.evaluate("Notification.permission") == "granted"
    page.click("#alarm")  # the officer opts in (and the click lets the page play sound)
    assert page.evaluate("localStorage.getItem('offsite.alarm')") == "1"
    _breach(broker, site["device"], 61)  # at or above 50 %LEL: critical
    page.wait_for_function("window.__seen.notifications.length > 0", timeout=20_000)
    seen = page.evaluate("window.__seen")
    assert seen["notifications"][0]["title"] == "严重告警"
    assert seen["notifications"][0]["body"] == SUBJECT
    assert 880 in seen["tones"]
    # The real objects did their work: the notification was shown, and the audio context ran.
    page.wait_for_function("window.__seen.shown > 0 || window.__seen.failed > 0", timeout=5_000)
    assert page.evaluate("window.__seen.failed") == 0
    assert page.evaluate("window.__seen.shown") >= 1
    page.wait_for_function(
        "window.__seen.contexts.some(c => c.state === 'running' && c.currentTime > 0)",
        timeout=5_000,
    )
    page.screenshot(path=str(tmp_path / "board-critical-alarm.png"), full_page=True)


class _Hook(BaseHTTPRequestHandler):
    """A webhook receiver that answers the status the test sets."""

    status = 500
    received: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).received.append(body)
        self.send_response(type(self).status)
        self.end_headers()
        self.wfile.write(b"ok" if type(self).status == 200 else b"receiver down")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[tuple[str, type[_Hook]]]:
    handler = type("Hook", (_Hook,), {"status": 500, "received": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def offsite_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """`hooked`: EMB's webhook pointed at the test's receiver, giving up after 2 tries;
    unparametrized, the workbench's defaults."""
    if getattr(request, "param", None) != "hooked":
        return {}
    url, _ = request.getfixturevalue("hook")
    return {"alerts": webhook_alerts(url, max_attempts=2, backoff_initial_s=0.2, backoff_max_s=0.5)}


@pytest.mark.parametrize("offsite_settings", ["hooked"], indirect=True)
def test_dead_webhook_retried_from_the_outbox_is_delivered_and_audited(
    hook: tuple[str, type[_Hook]], wb: Workbench, tmp_path: Path
) -> None:
    site, broker, db, browser, base = wb.site, wb.broker, wb.db, wb.browser, wb.base
    _, receiver = hook
    login = person(db, "张伟", "EMB")
    _breach(broker, site["device"], 30)  # first-level alarm: one alert, one notification
    alert_id = wait_for_alert(db)

    def dead() -> int | None:
        row = db.execute(
            "SELECT id FROM outbox WHERE alert_id = %s AND status = 'dead' ORDER BY id LIMIT 1",
            (alert_id,),
        ).fetchone()
        return row[0] if row else None

    notification = int(wait_until(dead, timeout=30, what="a dead delivery"))
    assert len(receiver.received) >= 2  # it really was attempted, and answered 500
    page = signed_in(browser, base, login)
    page.goto(f"{base}/notifications?status=dead")
    row = page.locator(f"tr[data-notification-id='{notification}']")
    assert row.get_attribute("data-status") == "dead"
    text = row.inner_text()
    assert "已放弃" in text
    assert "500" in text  # the receiver's answer is the last error
    assert "接收方返回错误（HTTP 500）" in row.locator("td.last-error .failure").inner_text()
    assert row.locator("td.last-error code.raw").inner_text() == "webhook answered HTTP 500"
    assert "不再自动重试" in row.locator("td.next-attempt").inner_text()
    assert "告警生成" in text  # the event, in Chinese
    page.screenshot(path=str(tmp_path / "outbox-dead.png"), full_page=True)
    receiver.status = 200
    with page.expect_navigation():  # the page reloads itself after the retry is queued
        row.locator("button.retry").click()

    def delivered() -> bool:
        page.goto(f"{base}/notifications")
        row = page.locator(f"tr[data-notification-id='{notification}']")
        status: str | None = row.get_attribute("data-status")
        return status == "sent"

    wait_until(delivered, timeout=20, what="the retried delivery sent")
    assert "已发送" in page.locator(f"tr[data-notification-id='{notification}']").inner_text()
    assert json.loads(receiver.received[-1])["alert"]["id"] == alert_id
    page.screenshot(path=str(tmp_path / "outbox-retried-sent.png"), full_page=True)
    audit = db.execute(
        "SELECT actor, payload FROM audit_log WHERE entity = 'notification' AND entity_id = %s"
        " AND action = 'notification.retried'",
        (str(notification),),
    ).fetchall()
    assert len(audit) == 1
    assert audit[0][0] == f"张伟 ({login})"
    assert json.loads(audit[0][1])["was"] == "dead"
    # The audit page verifies the chain that now holds the retry.
    page.goto(f"{base}/audit")
    assert page.get_attribute("#audit-result", "data-ok") == "true"
    assert "审计链校验通过" in page.inner_text("#audit-result")
    # A viewer sees the outbox without the retry button; another department's id is 404.
    viewer = wb.page_as("viewer", "/notifications")
    assert viewer.locator(f"tr[data-notification-id='{notification}']").count() == 1
    assert viewer.locator("button.retry").count() == 0
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {site['outsider']}"}) as c:
        assert c.post(f"/notifications/{notification}/retry").status_code == 404
        assert c.post(f"/api/v1/notifications/{notification}/retry").status_code == 404


def test_audit_page_shows_the_verify_result_and_a_broken_link(
    wb: Workbench, tmp_path: Path
) -> None:
    site, broker, db = wb.site, wb.broker, wb.db
    _breach(broker, site["device"])
    wait_for_alert(db)
    wait_until(lambda: db.execute("SELECT count(*) FROM audit_log").fetchall()[0][0] >= 2,
               what="audit entries")  # fmt: skip
    page = wb.page_as("viewer", "/audit")
    result = page.inner_text("#audit-result")
    assert page.get_attribute("#audit-result", "data-ok") == "true"
    assert "审计链校验通过" in result
    count = db.execute("SELECT count(*) FROM audit_log").fetchone()
    assert count is not None
    assert f"已检查 {count[0]} 条" in result
    page.screenshot(path=str(tmp_path / "audit-ok.png"), full_page=True)
    # Someone with the database's keys rewrites entry 2: the page says where and how.
    db.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
    db.execute("UPDATE audit_log SET actor = 'someone else' WHERE seq = 2")
    db.execute("ALTER TABLE audit_log ENABLE TRIGGER USER")
    page.reload()
    assert page.get_attribute("#audit-result", "data-ok") == "false"
    broken = page.inner_text("#audit-result")
    assert "审计链在第 2 条断开" in broken
    assert "写入后内容被改动" in broken
    page.screenshot(path=str(tmp_path / "audit-broken.png"), full_page=True)


def test_extend_a_silence_from_the_alert_page_and_the_silences_page(
    wb: Workbench, tmp_path: Path
) -> None:
    site, broker, db, browser, base = wb.site, wb.broker, wb.db, wb.browser, wb.base
    _breach(broker, site["device"])
    alert_id = wait_for_alert(db)
    now = datetime.now(UTC)
    login = person(db, "张伟", "EMB")
    officer = {"Authorization": f"Bearer {site['officer']}"}
    r = httpx.post(f"{base}/api/v1/silences", headers=officer,
                   json={"matcher": "subject", "value": SUBJECT, "starts_at": now.isoformat(),
                         "ends_at": (now + timedelta(hours=2)).isoformat(),
                         "reason": "设备检修期间"})  # fmt: skip
    assert r.status_code == 201
    sid, first_end = r.json()["id"], datetime.fromisoformat(r.json()["ends_at"])
    page = signed_in(browser, base, login)
    page.goto(f"{base}/alerts/{alert_id}")
    card = page.locator(f"#active-silences [data-silence-id='{sid}']")
    assert "设备检修期间" in card.inner_text()
    card.locator("summary:has-text('延长…')").click()
    card.locator("select[name=hours]").select_option("24")
    card.locator(".extend-form button").click()
    preview = page.locator(f"#extend-preview-{sid}")
    preview.wait_for()
    text = preview.inner_text()
    assert "当前结束时间" in text
    assert "1" in preview.locator(".affected").inner_text()  # this open alert
    shown = (first_end + timedelta(hours=24)).astimezone(running_zone()).strftime("%Y-%m-%d %H:%M")
    assert shown in preview.locator(".new-end").inner_text()
    page.screenshot(path=str(tmp_path / "extend-preview-alert.png"), full_page=True)
    preview.locator("button.extend-confirm").click()
    page.wait_for_selector(
        f"#active-silences [data-silence-id='{sid}'] .until:has-text('{shown}')", timeout=10_000
    )
    # On the silences page: a chosen local time, first one past the 90-day cap (the browser
    # itself keeps times before the current end out of the field).
    page.goto(f"{base}/silences")
    row = page.locator(f"tr[data-silence-id='{sid}']")
    row.locator("summary:has-text('延长…')").click()
    too_far = (now + timedelta(days=100)).astimezone(running_zone()).strftime("%Y-%m-%dT%H:%M")
    row.locator("input[name=until]").fill(too_far)
    row.locator(".extend-form button").click()
    refusal = row.locator(".banner.error")
    refusal.wait_for()
    assert refusal.get_attribute("data-code") == "silence_too_long"
    assert "静默自开始起最长90天" in refusal.inner_text()
    page.screenshot(path=str(tmp_path / "extend-refused.png"), full_page=True)
    later = (now + timedelta(days=3)).astimezone(running_zone()).replace(second=0, microsecond=0)
    row.locator("input[name=until]").fill(later.strftime("%Y-%m-%dT%H:%M"))
    row.locator(".extend-form button").click()
    row.locator(f"#extend-preview-{sid} .new-end").wait_for()
    assert later.strftime("%Y-%m-%d %H:%M") in row.locator(".new-end").inner_text()
    page.screenshot(path=str(tmp_path / "extend-preview-silences.png"), full_page=True)
    row.locator("button.extend-confirm").click()
    page.wait_for_selector(
        f"tr[data-silence-id='{sid}']:has-text('{later.strftime('%Y-%m-%d %H:%M')}')",
        timeout=10_000,
    )
    page.screenshot(path=str(tmp_path / "silences-extended.png"), full_page=True)
    ends = db.execute("SELECT ends_at FROM silences WHERE id = %s", (sid,)).fetchone()
    assert ends == (later,)
    audit = db.execute(
        "SELECT actor FROM audit_log WHERE entity = 'silence' AND action = 'silence.extended'"
        " ORDER BY seq"
    ).fetchall()
    assert audit == [(f"张伟 ({login})",), (f"张伟 ({login})",)]
    # Without the page's CSRF token the same session is refused.
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    r = httpx.post(f"{base}/silences/{sid}/extend", cookies=cookies,
                   data={"ends_at": (later + timedelta(hours=1)).isoformat()})  # fmt: skip
    assert r.status_code == 403


def running_zone() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("Asia/Shanghai")  # the workbench's default zone (web.timezone)


@pytest.fixture
def library(db: psycopg.Connection[Any], site: dict[str, str]) -> list[str]:
    """More EMB subjects beside the site: two of grade A and one of grade D."""
    codes = [make("9", "1", "320500", f"MA1D{n:04d}") for n in range(3)]
    for code, grade, name in zip(codes, "AAD", ("苏州甲公司", "苏州乙公司", "苏州丙公司"),
                                 strict=True):  # fmt: skip
        db.execute("INSERT INTO subjects (credit_code, name, grid, credit_grade) VALUES"
                   " (%s, %s, 'G-02', %s)", (code, name, grade))  # fmt: skip
        db.execute("INSERT INTO subject_departments (credit_code, department) VALUES (%s, 'EMB')",
                   (code,))  # fmt: skip
    return codes


def test_double_random_draw_previewed_confirmed_and_merged(
    library: list[str], wb: Workbench, tmp_path: Path
) -> None:
    site, db, browser, base = wb.site, wb.db, wb.browser, wb.base
    login = person(db, "张伟", "EMB")
    page = signed_in(browser, base, login)
    page.goto(f"{base}/draws")
    assert "A（良好） 5%" in page.inner_text(".ratios")
    page.fill("#draw-form input[name=period]", "2026-Q4")
    page.click("#draw-form button")
    page.wait_for_selector("#draw-preview")
    preview = page.inner_text("#draw-preview")
    assert "从 4 个监管对象中抽取 3 个" in preview  # ceil(2 x 5%) A + the C + the D
    grades = {r.get_attribute("data-grade"): r.locator(".n").inner_text()
              for r in page.locator("#draw-preview tr[data-grade]").all()}  # fmt: skip
    assert grades == {"A": "1", "C": "1", "D": "1"}
    drawn = [li.get_attribute("data-code") for li in page.locator(".drawn-list li").all()]
    assert SUBJECT in drawn
    assert library[2] in drawn  # the D-grade one (ratio 40 %, rounded up)
    assert "苏州某化工有限公司" in preview
    page.screenshot(path=str(tmp_path / "draw-preview.png"), full_page=True)
    assert db.execute("SELECT count(*) FROM draws").fetchone() == (0,)  # preview stores nothing
    page.click("#draw-confirm")
    page.wait_for_selector("#draw-history tr[data-draw-id]")
    history = page.inner_text("#draw-history")
    assert "2026-Q4" in history
    assert "张伟" in history
    assert "按信用等级随机抽取" in history
    stored = db.execute("SELECT credit_code FROM draw_subjects ORDER BY credit_code").fetchall()
    assert [c for (c,) in stored] == sorted(drawn)
    # EEB draws the same period (its only subject is the site, grade C: drawn).
    r = httpx.post(f"{base}/api/v1/inspections/draws", json={"period": "2026-Q4"},
                   headers={"Authorization": f"Bearer {site['eeb']}"})  # fmt: skip
    assert r.status_code == 201
    assert r.json()["credit_codes"] == [SUBJECT]
    page.reload()
    page.locator("#draw-history button.merge").first.click()
    page.wait_for_selector(".merge-preview")
    merge = page.inner_text(".merge-preview")
    assert "苏州某化工有限公司" in merge
    assert "市应急局" in merge
    assert "市生态环境局" in merge
    page.screenshot(path=str(tmp_path / "merge-preview.png"), full_page=True)
    page.click(".merge-preview button.merge-confirm")
    page.wait_for_selector(".merge-result")
    result = page.inner_text(".merge-result")
    assert "联合检查" in result
    page.screenshot(path=str(tmp_path / "merge-result.png"), full_page=True)
    task = db.execute(
        "SELECT kind, lead_department, departments, draw_period FROM tasks WHERE subject_key = %s",
        (SUBJECT,),
    ).fetchone()
    assert task is not None
    assert task[0] == "joint"
    assert sorted(task[2]) == ["EEB", "EMB"]
    assert task[3] == "2026-Q4"
    page.click(".merge-result a")
    page.wait_for_url(f"{base}/tasks/*")
    # A viewer sees the history but no draw or merge controls.
    viewer = wb.page_as("viewer", "/draws")
    assert viewer.locator("#draw-history tr[data-draw-id]").count() == 1
    assert viewer.locator("#draw-form").count() == 0
    assert viewer.locator("button.merge").count() == 0
    viewer.screenshot(path=str(tmp_path / "draws-viewer.png"), full_page=True)


def _sideways(page: Any) -> int:
    return int(
        page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    )


def test_new_pages_and_their_previews_do_not_scroll_sideways_at_390px(
    library: list[str], wb: Workbench, tmp_path: Path
) -> None:
    site, broker, db, browser, base = wb.site, wb.broker, wb.db, wb.browser, wb.base
    _breach(broker, site["device"])
    alert_id = wait_for_alert(db)
    now = datetime.now(UTC)
    key = {"Authorization": f"Bearer {site['officer']}"}
    r = httpx.post(f"{base}/api/v1/silences", headers=key,
                   json={"matcher": "subject", "value": SUBJECT, "starts_at": now.isoformat(),
                         "ends_at": (now + timedelta(hours=2)).isoformat(),
                         "reason": "设备检修期间，夜班人员不足，暂停推送"})  # fmt: skip
    sid = r.json()["id"]
    for dept_key in (site["officer"], site["eeb"]):
        httpx.post(f"{base}/api/v1/inspections/draws", json={"period": "2026-Q4"},
                   headers={"Authorization": f"Bearer {dept_key}"})  # fmt: skip
    page = page_for(browser, site["officer"], width=390, height=844)
    widths: dict[str, int] = {}

    def check(name: str) -> None:
        page.screenshot(path=str(tmp_path / f"narrow-{name}.png"), full_page=True)
        widths[name] = _sideways(page)

    page.goto(f"{base}/draws")
    page.click("#draw-form button")
    page.wait_for_selector("#draw-preview")
    check("draw-preview")
    page.locator("#draw-history button.merge").first.click()
    page.wait_for_selector(".merge-preview")
    check("merge-preview")
    # The silence's extend preview, on the silences page and on the alert.
    for path, silence, name in (
        ("/silences", f"tr[data-silence-id='{sid}']", "silence-extend-preview"),
        (
            f"/alerts/{alert_id}",
            f"#active-silences [data-silence-id='{sid}']",
            "alert-extend-preview",
        ),
    ):
        page.goto(f"{base}{path}")
        item = page.locator(silence)
        item.locator("summary").click()
        item.locator(".extend-form button").click()
        item.locator(f"#extend-preview-{sid}").wait_for()
        check(name)
    page.goto(f"{base}/rules")
    check("rules-with-summaries")
    page.goto(f"{base}/alerts/999999999")
    page.wait_for_selector("#page-error")
    assert "未找到" in page.inner_text("#page-error")
    check("error-page")
    assert {name: w for name, w in widths.items() if w > 0} == {}
