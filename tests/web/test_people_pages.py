"""Signed-in people in the workbench: who the header names, a board that ends when its person
is disabled, and the platform admin's inbox of unbound devices with its bind form."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from api import keys, people
from api.auth import create_key
from ingest.topics import telemetry_topic
from offsite.app import OffsiteApp
from offsite.embedded import EmbeddedBroker
from subjects.credit_code import make
from tests.helpers import Publisher, wait_until
from tests.web.conftest import Workbench, page_for, person, signed_in

PLANT = make("9", "1", "320500", "MA1RXXXX")  # with valid check characters: bindable
NOWHERE = make("9", "1", "320500", "MA1TXXXX")  # valid, but in no library


@pytest.fixture
def plant(db: psycopg.Connection[Any]) -> str:
    """A tank farm supervised by EMB, with no devices yet."""
    db.execute(
        "INSERT INTO subjects (credit_code, name, grid) VALUES (%s, '苏州某储罐有限公司', 'G-03')",
        (PLANT,),
    )
    db.execute(
        "INSERT INTO subject_departments (credit_code, department) VALUES (%s, 'EMB')", (PLANT,)
    )
    return PLANT


def test_disabled_person_board_stops_and_says_so(wb: Workbench, tmp_path: Path) -> None:
    db, browser, base = wb.db, wb.browser, wb.base
    login = person(db, "张伟", "EMB", "officer")
    page = signed_in(browser, base, login)
    page.wait_for_selector("#live.live", timeout=10_000)
    assert page.inner_text("header .ident") == "张伟 · 市应急局 · 执法人员"
    assert page.locator("#signed-out").is_hidden()
    page.screenshot(path=str(tmp_path / "1-board-signed-in.png"), full_page=True)
    # Let the list's reload on connect come back first: a swap refused after the disable would
    # (rightly) send the page to /login before the stream's notice is shown.
    page.wait_for_load_state("networkidle")
    people.disable(db, login)
    # The stream re-checks its caller every couple of seconds and sends `signed_out`.
    page.wait_for_selector("#signed-out", state="visible", timeout=15_000)
    notice = page.inner_text("#signed-out")
    assert "已退出登录" in notice
    assert "账号已被停用" in notice
    assert page.locator("#stale").is_hidden()  # not the "reconnecting" banner
    assert page.inner_text("#live-text") == "已退出登录"
    # The board has stopped: its EventSource is closed, not retrying into 401s.
    assert page.evaluate("window.boardStream.readyState") == 2
    link = page.locator("#signed-out a")
    assert link.get_attribute("href") == "/login?next=/"
    page.screenshot(path=str(tmp_path / "2-board-signed-out.png"), full_page=True)
    link.click()
    page.wait_for_url(f"{base}/login?next=/")


def test_header_names_the_person_and_the_platform_admin_role(
    running: OffsiteApp, db: psycopg.Connection[Any], browser: Any, tmp_path: Path
) -> None:
    login = person(db, "陈静", "BDB", "platform_admin")
    base = running.endpoints.http
    page = signed_in(browser, base, login)
    assert page.inner_text("header .ident") == "陈静 · 市大数据管理局 · 平台管理员"
    page.goto(f"{base}/?lang=en")
    assert page.inner_text("header .ident").endswith(" · Platform admin")
    page.screenshot(path=str(tmp_path / "header-en.png"))
    page.goto(f"{base}/?lang=zh_CN")
    # An API key's board names the key.
    key = create_key(db, "EMB", "viewer", "值班大屏")
    r = httpx.get(f"{base}/", headers={"Authorization": f"Bearer {key}"})
    assert '<span class="person" title="key:' in r.text
    assert ">值班大屏</span> · " in r.text


def _unbound_device(broker: EmbeddedBroker, db: psycopg.Connection[Any]) -> str:
    """A device that sends a reading but is bound to no subject."""
    device = f"new-{uuid.uuid4().hex[:6]}"
    pub = Publisher(broker.port)
    pub.publish(
        telemetry_topic(device), json.dumps({"ts": int(time.time() * 1000), "values": {"lel": 3}})
    )
    pub.wait_acked(1)
    pub.close()
    wait_until(
        lambda: db.execute("SELECT 1 FROM devices WHERE device_id = %s", (device,)).fetchone(),
        timeout=20,
        what="the new device in ingest's devices",
    )
    return device


def test_unbound_inbox_is_the_platform_admins_alone(
    site: dict[str, str],
    plant: str,
    running: OffsiteApp,
    broker: EmbeddedBroker,
    db: psycopg.Connection[Any],
) -> None:
    device = _unbound_device(broker, db)
    base = running.endpoints.http
    admin = {"Authorization": f"Bearer {create_key(db, 'EMB', 'admin', '部门管理员')}"}
    platform = {"Authorization": f"Bearer {create_key(db, 'BDB', 'platform_admin', '平台')}"}
    with httpx.Client(base_url=base) as http:
        assert http.get("/devices/unbound", headers=admin).status_code == 404
        form = {"credit_code": plant, "role": "gas_detector"}
        r = http.post(f"/devices/unbound/{device}/bind", headers=admin, data=form)
        assert r.status_code == 404
        assert 'id="unbound-link"' not in http.get("/devices", headers=admin).text
        assert device not in http.get("/devices", headers=admin).text

        assert 'id="unbound-link"' in http.get("/devices", headers=platform).text
        inbox = http.get("/devices/unbound", headers=platform)
        assert inbox.status_code == 200
        assert f'data-device-id="{site["device"]}"' not in inbox.text  # bound already
        assert f'data-device-id="{device}"' in inbox.text
        # Clear refusals, never a 500: a bad code, an unknown subject, a device never heard.
        bad = http.post(
            f"/devices/unbound/{device}/bind",
            headers=platform,
            data={"credit_code": plant[:-1] + ("0" if plant[-1] != "0" else "1"), "role": "tank"},
        )
        assert bad.status_code == 422
        assert "表单有误" in bad.text
        assert "不是有效的统一社会信用代码" in bad.text  # names what was wrong, in Chinese
        assert "check character" not in bad.text  # the library's English stays out
        unknown = http.post(
            f"/devices/unbound/{device}/bind",
            headers=platform,
            data={"credit_code": NOWHERE, "role": "gas_detector"},
        )
        assert unknown.status_code == 404
        assert "未找到，或本部门无权查看" in unknown.text
        never = http.post("/devices/unbound/nobody-1/bind", headers=platform, data=form)
        assert never.status_code == 404
        # A bound device is not re-bound from the inbox (a stale page must not move it).
        moved = http.post(f"/devices/unbound/{site['device']}/bind", headers=platform, data=form)
        assert moved.status_code == 409
        assert db.execute(
            "SELECT count(*) FROM device_bindings WHERE device_id = %s", (device,)
        ).fetchone() == (0,)


def test_platform_admin_binds_an_unbound_device_in_the_browser(
    plant: str,
    running: OffsiteApp,
    broker: EmbeddedBroker,
    db: psycopg.Connection[Any],
    browser: Any,
    tmp_path: Path,
) -> None:
    device = _unbound_device(broker, db)
    login = person(db, "陈静", "BDB", "platform_admin")
    base = running.endpoints.http
    page = signed_in(browser, base, login)
    page.goto(f"{base}/devices")
    page.click("#unbound-link")
    page.wait_for_url(f"{base}/devices/unbound")
    row = page.locator(f"#unbound-list tr[data-device-id='{device}']")
    assert "在线" in row.inner_text() or "未知" in row.inner_text()
    token = row.locator("input[name=csrf_token]").get_attribute("value")
    assert token  # a signed-in person's form carries the session's CSRF token
    page.screenshot(path=str(tmp_path / "1-inbox.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})  # on a phone: no sideways scrolling
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(tmp_path / "1-inbox-phone.png"), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 900})
    row.locator("input[name=credit_code]").fill(plant)
    row.locator("input[name=role]").fill("gas_detector")
    row.locator("input[name=point]").fill("罐区东侧")
    row.locator("button[type=submit]").click()
    page.wait_for_url(f"{base}/devices/unbound?bound={device}")
    notice = page.inner_text("#bound-notice")
    assert device in notice
    assert "苏州某储罐有限公司" in notice
    assert plant in notice
    assert page.locator(f"#unbound-list tr[data-device-id='{device}']").count() == 0
    page.screenshot(path=str(tmp_path / "2-bound.png"), full_page=True)
    bound = db.execute(
        "SELECT credit_code, role, point FROM device_bindings WHERE device_id = %s", (device,)
    ).fetchone()
    assert bound == (plant, "gas_detector", "罐区东侧")
    # The supervising department now finds the device on the subject's file.
    officer = page_for(browser, create_key(db, "EMB", "officer", "张伟"))
    officer.goto(f"{base}/subjects/{plant}")
    assert device in officer.inner_text("#devices")
    officer.screenshot(path=str(tmp_path / "3-subject-file.png"), full_page=True)
    # Without the token the same form is refused.
    other = _unbound_device(broker, db)
    r = page.request.post(
        f"{base}/devices/unbound/{other}/bind",
        form={"credit_code": plant, "role": "gas_detector"},
    )
    assert r.status == 403
    assert db.execute(
        "SELECT count(*) FROM device_bindings WHERE device_id = %s", (other,)
    ).fetchone() == (0,)


def test_revoked_key_board_stops_and_says_so(
    running: OffsiteApp, db: psycopg.Connection[Any], browser: Any, tmp_path: Path
) -> None:
    key = create_key(db, "EMB", "viewer", "值班大屏")
    page = page_for(browser, key)
    page.goto(f"{running.endpoints.http}/")
    page.wait_for_selector("#live.live", timeout=10_000)
    record = keys.find_active(db, key)
    assert record is not None
    page.wait_for_load_state("networkidle")  # the list's reload on connect has come back
    keys.revoke_key(db, record.id)
    base = running.endpoints.http

    def ended() -> bool:
        # Either the stream's notice, or (when a list reload was refused first) /login.
        if page.url == f"{base}/login?next=%2F":
            return True
        return bool(page.locator("#signed-out").is_visible())

    wait_until(ended, timeout=15, what="the board to stop: notice or /login")
    if page.url.startswith(f"{base}/login"):
        page.wait_for_selector("#login")
    else:
        assert page.locator("#stale").is_hidden()
        assert page.evaluate("window.boardStream.readyState") == 2
    page.screenshot(path=str(tmp_path / "revoked.png"), full_page=True)


def test_a_refused_swap_signs_in_again_to_its_page(running: OffsiteApp) -> None:
    """An HTMX swap refused for want of a sign-in sends the page, not the fragment, to /login."""
    base = running.endpoints.http
    r = httpx.get(
        f"{base}/board/rows?page=1",
        headers={"HX-Request": "true", "HX-Current-URL": f"{base}/?q=%E5%8C%96%E5%B7%A5"},
    )
    assert r.status_code == 401
    assert r.headers["HX-Redirect"] == "/login?next=%2F%3Fq%3D%25E5%258C%2596%25E5%25B7%25A5"
    # Another site's URL is not taken as the way back.
    r = httpx.get(
        f"{base}/board/rows", headers={"HX-Request": "true", "HX-Current-URL": "http://evil/x"}
    )
    assert r.headers["HX-Redirect"] == "/login?next=%2Fboard%2Frows"
