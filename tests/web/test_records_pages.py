"""The outbox and audit pages in Chromium: a failed delivery says what went wrong in Chinese
with the channel's raw words (escaped) and when it is tried again; the audit page explains
an empty chain and a chain without signed checkpoints, then shows signed ones, the unsigned
tail and a forged checkpoint."""

from __future__ import annotations

import re
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from alerts import checkpoints
from tests.helpers import wait_until
from tests.web.conftest import Workbench, person, signed_in, webhook_alerts
from tests.web.test_board import raised

KEY = checkpoints.new_key()
ZONE = ZoneInfo("Asia/Shanghai")


def _closed_port() -> int:
    """A loopback port nobody listens on: a webhook there is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def offsite_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """`unreachable`: EMB's webhook points nowhere, a failure is tried again ten minutes later.
    `signing`: audit checkpoints are signed with KEY."""
    if request.param == "unreachable":
        url = f"http://127.0.0.1:{_closed_port()}/hook"
        return {"alerts": webhook_alerts(url, max_attempts=3, backoff_initial_s=600,
                                         backoff_max_s=600)}  # fmt: skip
    assert request.param == "signing"
    return {"alerts": {"audit_signing_key": KEY}}


@pytest.mark.parametrize("offsite_settings", ["unreachable"], indirect=True)
def test_outbox_shows_what_a_failure_means_its_raw_text_and_the_next_retry(
    wb: Workbench, tmp_path: Path
) -> None:
    db, browser, base = wb.db, wb.browser, wb.base
    alert_id = raised(wb, 30)

    def failed_once() -> tuple[int, str, datetime] | None:
        row = db.execute(
            "SELECT id, last_error, next_attempt_at FROM outbox WHERE alert_id = %s"
            " AND status = 'pending' AND attempts = 1",
            (alert_id,),
        ).fetchone()
        return (int(row[0]), str(row[1]), row[2]) if row else None

    notification, raw, due = wait_until(failed_once, timeout=30, what="a failed delivery")
    assert raw.startswith("webhook unreachable: <urlopen error")  # markup-like raw text
    page = signed_in(browser, base, person(db, "张伟", "EMB"))
    page.goto(f"{base}/notifications")
    row = page.locator(f"tr[data-notification-id='{notification}']")
    assert "发送失败，将重试" in row.locator("td[data-th='状态']").inner_text()
    error = row.locator("td.last-error")
    assert "无法连接接收方" in error.locator(".failure").inner_text()
    assert error.locator(".failure").get_attribute("data-kind") == "unreachable"
    # The raw text is shown as text: "<urlopen error ...>" is no element of the page.
    assert error.locator("code.raw").inner_text() == raw
    assert page.locator("main urlopen").count() == 0
    assert "&lt;urlopen error" in error.inner_html()
    # When it is tried again, in the workbench's zone, and how many tries it has.
    next_attempt = row.locator("td.next-attempt").inner_text()
    assert next_attempt == due.astimezone(ZONE).strftime("%Y-%m-%d %H:%M:%S")
    shown = datetime.strptime(next_attempt, "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZONE)
    assert timedelta(minutes=9) < shown - datetime.now(UTC) <= timedelta(minutes=10)
    assert row.locator("td[data-th='尝试次数']").inner_text() == "1 / 3"
    assert row.locator("button.retry").count() == 0  # pending: not retried by hand
    page.screenshot(path=str(tmp_path / "1-outbox-failed.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{base}/notifications")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(tmp_path / "2-outbox-failed-390.png"), full_page=True)
    en = page.goto(f"{base}/notifications?lang=en")
    assert en is not None
    text = page.locator(f"tr[data-notification-id='{notification}']").inner_text()
    assert "The receiver could not be reached" in text
    assert "failed, retrying" in text
    page.goto(f"{base}/notifications?lang=zh_CN")


@pytest.mark.parametrize("offsite_settings", ["signing"], indirect=True)
def test_audit_page_explains_an_empty_chain_and_missing_checkpoints_then_signed_ones(
    wb: Workbench, tmp_path: Path
) -> None:
    site, db, browser, base = wb.site, wb.db, wb.browser, wb.base
    assert db.execute("SELECT count(*) FROM audit_log").fetchone() == (0,)
    page = signed_in(browser, base, person(db, "王芳", "EMB", "viewer"))
    response = page.goto(f"{base}/audit")
    assert response is not None
    assert response.status == 200
    assert page.get_attribute("#audit-result", "data-ok") == "true"
    assert "审计链尚无条目" in page.inner_text("#audit-empty")
    assert "尚无签名检查点" in page.inner_text("#no-checkpoints")
    assert "无法发现最新的记录被删除" in page.inner_text("#checkpoints")
    assert "offsite audit checkpoint" in page.inner_text("#checkpoints")
    page.screenshot(path=str(tmp_path / "1-audit-empty.png"), full_page=True)
    # Entries, still unsigned: the chain verifies and the page says what that does not prove.
    alert_id = raised(wb)
    wait_until(lambda: (db.execute("SELECT count(*) FROM audit_log").fetchone() or (0,))[0] >= 2,
               what="audit entries")  # fmt: skip
    page.reload()
    assert "审计链校验通过" in page.inner_text("#audit-result")
    assert page.locator("#no-checkpoints").count() == 1
    # The operator signs the head: the page names the newest checkpoint and the site's key.
    cp = checkpoints.sign_head(db, checkpoints.signing_key(KEY), datetime.now(UTC))
    assert cp is not None
    page.reload()
    signed = page.inner_text("#checkpoints")
    assert f"共 1 个签名检查点；最新一个覆盖到第 {cp.seq} 条" in signed
    assert "签名已按本站签名密钥校验" in signed
    assert page.locator("#unsigned-tail").count() == 0
    page.screenshot(path=str(tmp_path / "2-audit-signed.png"), full_page=True)
    # Work goes on: the entries after the checkpoint are named as not yet signed.
    officer = {"Authorization": f"Bearer {site['officer']}"}
    assert httpx.post(f"{base}/api/v1/alerts/{alert_id}/ack", headers=officer).status_code == 200
    page.reload()
    tail = page.inner_text("#unsigned-tail")
    total = db.execute("SELECT count(*) FROM audit_log").fetchone()
    assert total is not None
    assert re.search(rf"此后写入的 {total[0] - cp.seq} 条记录尚未被签名覆盖", tail), tail
    # A checkpoint re-signed by someone else's key is a forgery.
    forged = checkpoints.Checkpoint(cp.seq, cp.hash, cp.at, cp.public_key, "00" * 64)
    with db.transaction():
        db.execute("ALTER TABLE audit_checkpoints DISABLE TRIGGER USER")
        db.execute("UPDATE audit_checkpoints SET signature = %s WHERE seq = %s",
                   (forged.signature, cp.seq))  # fmt: skip
        db.execute("ALTER TABLE audit_checkpoints ENABLE TRIGGER USER")
    page.reload()
    assert page.get_attribute("#audit-result", "data-ok") == "false"
    assert "签名检查点的签名无效" in page.inner_text("#audit-result")
    assert page.get_attribute("#audit-result p.bad", "data-break") == "bad_signature"
    page.screenshot(path=str(tmp_path / "3-audit-forged.png"), full_page=True)
