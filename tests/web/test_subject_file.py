"""The subject file (一企一档) in Chromium: readings charts and credit history, edits of basic
data and coordinates with Chinese field errors and the audit entry naming the person,
department links and the consent flow, device bindings, what a viewer and another
department get, and no sideways scrolling at 390 px."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import psycopg

from api.auth import create_key
from offsite.app import OffsiteApp
from subjects.credit_code import make
from tests.helpers import one_row, wait_until
from tests.web import test_people_pages
from tests.web.conftest import SUBJECT, Workbench, page_for, person, signed_in
from tests.web.test_board import _breach
from tests.web.test_people_pages import _unbound_device

FILE = f"/subjects/{SUBJECT}"
NEW = make("9", "1", "320500", "MA1WXXXX")  # valid check characters: importable
plant = test_people_pages.plant  # the fixture: a second subject of EMB's, with no devices


def _no_sideways_scroll(page: Any) -> int:
    return int(
        page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    )


def _widest(page: Any) -> str:
    """What sticks out past the right edge, to name in a failure."""
    return str(
        page.evaluate(
            "[...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right"
            " > document.documentElement.clientWidth + 1).slice(-5)"
            ".map(e => e.tagName + '.' + e.className + '#' + e.id)"
        )
    )


def _open_all_forms(page: Any) -> None:
    page.evaluate("document.querySelectorAll('details.edit').forEach(d => d.open = true)")


def test_file_charts_recent_readings_and_lists_credit_history(
    wb: Workbench, tmp_path: Path
) -> None:
    site, broker, db, browser, base = wb.site, wb.broker, wb.db, wb.browser, wb.base
    _breach(broker, site["device"])
    wait_until(
        lambda: (
            db.execute(
                "SELECT count(*) FROM readings WHERE device_id = %s", (site["device"],)
            ).fetchone()
            == (5,)
        ),
        timeout=20,
        what="the five readings stored",
    )
    page = signed_in(browser, base, person(db, "张伟"))
    page.goto(f"{base}{FILE}")
    chart = page.locator("#charts .chart").first
    chart.locator("canvas").wait_for()
    wait_until(lambda: chart.get_attribute("data-rendered") is not None, what="chart drawn")
    assert int(chart.get_attribute("data-rendered") or 0) >= 1  # hourly means of the breach
    assert f"{site['device']} · lel" in page.inner_text("#charts")
    data = page.request.get(f"{base}{chart.get_attribute('data-chart')}").json()
    # The gas pack's two alarm levels (GB/T 50493: 25 and 50 %LEL) are the limit lines.
    assert sorted(line["value"] for line in data["limits"]) == [25.0, 50.0]
    assert data["series"][0]["data"][-1][1] > 0
    assert "暂无信用等级变更记录" in page.inner_text("#credit-history")
    page.screenshot(path=str(tmp_path / "1-file-chart.png"), full_page=True)
    # An edit of the grade in the page, then an import: both in the history, newest first.
    page.click("#credit summary")
    page.select_option("#credit-form select[name=credit_scheme]", "jiangsu_env")
    page.select_option("#credit-form select[name=credit_grade]", "red")
    page.click("#credit-form button[type=submit]")
    page.wait_for_selector("#done")
    assert "信用等级已保存" in page.inner_text("#done")
    assert "红色" in page.inner_text("#credit-grade")
    items = page.locator("#credit-history li").all_inner_texts()
    assert len(items) == 1
    assert "编辑" in items[0]
    assert "张伟" in items[0]
    assert "原为 C" in items[0]
    # A subject imported from CSV starts its history with the import, then a page edit.
    csv = tmp_path / "new.csv"
    csv.write_text(f"统一社会信用代码,名称,信用等级\n{NEW},苏州某电镀有限公司,绿\n", "utf-8")
    page.goto(f"{base}/subjects")
    page.set_input_files("#import-form input[type=file]", str(csv))
    page.click("#import-form button")
    page.wait_for_selector("#report")
    assert page.locator("#report .ok").count() == 1, page.inner_text("#report")
    page.goto(f"{base}/subjects/{NEW}")
    page.click("#credit summary")
    page.select_option("#credit-form select[name=credit_scheme]", "abcd")
    page.select_option("#credit-form select[name=credit_grade]", "D")
    page.click("#credit-form button[type=submit]")
    page.wait_for_selector("#done")
    items = page.locator("#credit-history li").all_inner_texts()
    assert len(items) == 2
    assert "D" in items[0]
    assert "编辑" in items[0]
    assert "原为 绿色" in items[0]
    assert "绿色" in items[1]
    assert "导入" in items[1]
    page.screenshot(path=str(tmp_path / "2-credit-history.png"), full_page=True)
    en = page.goto(f"{base}/subjects/{NEW}?lang=en")
    assert en is not None
    assert "Credit history" in page.inner_text("#credit")
    assert "Imported" in page.inner_text("#credit-history")
    page.goto(f"{base}{FILE}?lang=zh_CN")


def test_edit_basic_data_and_coordinates_with_field_errors_and_audit(
    wb: Workbench, tmp_path: Path
) -> None:
    db, browser, base = wb.db, wb.browser, wb.base
    login = person(db, "张伟")
    page = signed_in(browser, base, login)
    page.goto(f"{base}{FILE}")
    page.click("#basic summary")
    form = page.locator("#basic-form")
    form.locator("input[name=latitude]").fill("95")
    form.locator("input[name=longitude]").fill("")
    form.locator("input[name=name]").fill("")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#err-latitude")
    # Beside each field, in Chinese; nothing was saved.
    assert "纬度“95”须在 -90 到 90 之间" in page.inner_text("#err-latitude")
    assert "纬度和经度须同时填写" in page.inner_text("#err-longitude")
    page.screenshot(path=str(tmp_path / "1-basic-errors.png"), full_page=True)
    assert db.execute(
        "SELECT latitude FROM subjects WHERE credit_code = %s", (SUBJECT,)
    ).fetchone() == (31.2989,)
    form = page.locator("#basic-form")
    assert form.locator("input[name=latitude]").input_value() == "95"  # kept for correcting
    form.locator("input[name=name]").fill("")
    form.locator("input[name=latitude]").fill("31.3201")
    form.locator("input[name=longitude]").fill("120.6512")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#err-name")
    assert "必填" in page.inner_text("#err-name")
    form = page.locator("#basic-form")
    form.locator("input[name=name]").fill("苏州某化工股份有限公司")
    form.locator("input[name=address]").fill("苏州市工业园区星湖街2号")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#done")
    assert "基本信息已保存" in page.inner_text("#done")
    assert page.inner_text("h1").startswith("苏州某化工股份有限公司")
    assert page.inner_text("#coordinates") == "31.3201, 120.6512"
    assert "星湖街2号" in page.inner_text("#basic")
    record = page.locator("#subject-record li").first.inner_text()
    assert f"张伟 ({login})" in record
    assert "编辑监管对象" in record
    assert "名称" in record
    assert "纬度" in record
    page.screenshot(path=str(tmp_path / "2-basic-saved.png"), full_page=True)
    newest = "SELECT actor, action FROM audit_log WHERE entity = 'subject' AND entity_id = %s"
    assert one_row(db, newest + " ORDER BY seq DESC LIMIT 1", SUBJECT) == (
        f"张伟 ({login})",
        "subject.updated",
    )
    # Without the page's CSRF token the same form is refused.
    r = page.request.post(f"{base}{FILE}/basic", form={"name": "x"})
    assert r.status == 403
    # Permit limits: one "name = number" a line.
    page.click("#basic details:has(#limits-form) summary")
    page.fill("#limits-form textarea", "permit.cod_mg_l = 50\nlel.alarm = abc")
    page.click("#limits-form button[type=submit]")
    page.wait_for_selector("#err-attributes")
    assert "“abc”不是数字" in page.inner_text("#err-attributes")
    page.fill("#limits-form textarea", "permit.cod_mg_l = 50")
    page.click("#limits-form button[type=submit]")
    page.wait_for_selector("#done")
    assert "permit.cod_mg_l" in page.inner_text("#limits-list")


def test_edit_risk_level_and_tags_and_clear_the_coordinates(wb: Workbench, tmp_path: Path) -> None:
    db, browser, base = wb.db, wb.browser, wb.base
    login = person(db, "张伟")
    page = signed_in(browser, base, login)
    page.goto(f"{base}{FILE}")
    assert page.inner_text("#risk-level") == "一般风险"
    page.click("#risk summary")
    form = page.locator("#risk-form")
    # A tag over 32 characters is refused beside the field; nothing is saved.
    form.locator("input[name=tags]").fill("重点排污单位、" + "长" * 33)
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#err-tags")
    assert "过长" in page.inner_text("#err-tags")
    page.screenshot(path=str(tmp_path / "1-tags-error.png"), full_page=True)
    assert db.execute(
        "SELECT risk_level, tags FROM subjects WHERE credit_code = %s", (SUBJECT,)
    ).fetchone() == ("general", [])
    # A risk level outside the scale (a forged form) is refused in Chinese too.
    token = page.get_attribute("meta[name=csrf-token]", "content") or ""
    r = page.request.post(f"{base}{FILE}/risk", form={"risk_level": "extreme", "tags": "",
                                                       "csrf_token": token})  # fmt: skip
    assert r.status == 422
    assert "“extreme”不是风险等级" in r.text()
    form = page.locator("#risk-form")
    form.locator("select[name=risk_level]").select_option("major")
    form.locator("input[name=tags]").fill("重点排污单位，危化品；重点排污单位")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#done")
    assert "风险等级和标签已保存" in page.inner_text("#done")
    assert page.inner_text("#risk-level") == "重大风险"
    assert page.inner_text("#tags") == "危化品、重点排污单位"
    record = page.locator("#subject-record li").first.inner_text()
    assert f"张伟 ({login})" in record
    assert "风险等级" in record
    assert "标签" in record
    assert db.execute(
        "SELECT risk_level, tags FROM subjects WHERE credit_code = %s", (SUBJECT,)
    ).fetchone() == ("major", ["危化品", "重点排污单位"])
    page.screenshot(path=str(tmp_path / "2-risk-saved.png"), full_page=True)
    # Emptying both coordinates removes the position (and the record names it).
    page.click("#basic summary")
    form = page.locator("#basic-form")
    form.locator("input[name=latitude]").fill("")
    form.locator("input[name=longitude]").fill("")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#done")
    assert "基本信息已保存" in page.inner_text("#done")
    assert page.inner_text("#coordinates") == "—"
    assert db.execute(
        "SELECT latitude, longitude FROM subjects WHERE credit_code = %s", (SUBJECT,)
    ).fetchone() == (None, None)
    record = page.locator("#subject-record li").first.inner_text()
    assert "纬度" in record
    assert "经度" in record
    page.screenshot(path=str(tmp_path / "3-coordinates-cleared.png"), full_page=True)
    # Saving the emptied form again changes nothing and records nothing.
    entries = db.execute("SELECT count(*) FROM audit_log WHERE entity = 'subject'").fetchone()
    page.click("#basic summary")
    page.locator("#basic-form button[type=submit]").click()
    page.wait_for_selector("#done")
    assert (
        db.execute("SELECT count(*) FROM audit_log WHERE entity = 'subject'").fetchone() == entries
    )


def test_add_and_end_department_links_and_the_consent_flow(wb: Workbench, tmp_path: Path) -> None:
    site, db, browser, base = wb.site, wb.db, wb.browser, wb.base
    officer = signed_in(browser, base, person(db, "张伟"))
    officer.goto(f"{base}{FILE}")
    officer.click("#departments summary")
    officer.select_option("#link-form select[name=department]", "AMR")
    officer.click("#link-form button[type=submit]")
    officer.wait_for_selector("#err-department")
    # An officer links only their own department; the reason is shown beside the field.
    refused = officer.inner_text("#err-department")
    assert "执法人员只能关联本部门（市应急局）；关联市市场监管局须由部门管理员操作" in refused
    assert "officer" not in refused  # the library's English stays out of the Chinese page
    officer.screenshot(path=str(tmp_path / "1-link-refused.png"), full_page=True)
    admin = signed_in(browser, base, person(db, "刘洋", role="admin"))
    admin.goto(f"{base}{FILE}")
    admin.click("#departments summary")
    admin.select_option("#link-form select[name=department]", "AMR")
    admin.click("#link-form button[type=submit]")
    admin.wait_for_selector("#done")
    assert "该部门现已监管此对象" in admin.inner_text("#done")
    assert "市市场监管局" in admin.inner_text("#links li[data-department=AMR]")
    # AMR's officer now opens the file and ends AMR's own supervision: the file is gone.
    amr = page_for(browser, create_key(db, "AMR", "officer", "赵强"))
    amr.goto(f"{base}{FILE}")
    amr.click("#links li[data-department=AMR] button.end-link")
    amr.wait_for_url(f"{base}/subjects?done=unlinked")
    assert "监管期限已结束" in amr.inner_text("#done")
    assert (
        httpx.get(
            f"{base}{FILE}", headers={"Authorization": f"Bearer {site['outsider']}"}
        ).status_code
        == 404
    )
    admin.goto(f"{base}{FILE}")
    amr_period = admin.inner_text("#links li[data-department=AMR]")
    assert "当前" not in amr_period
    admin.screenshot(path=str(tmp_path / "2-link-ended.png"), full_page=True)
    # A department that does not supervise asks over the API; EMB's admin consents here.
    key = {"Authorization": f"Bearer {site['outsider']}"}
    r = httpx.post(f"{base}/api/v1/subjects/{SUBJECT}/departments", json={"department": "AMR"},
                   headers=key)  # fmt: skip
    assert r.status_code == 202, r.text
    admin.goto(f"{base}{FILE}")
    assert "等待同意" in admin.inner_text("#link-requests")
    assert officer.goto(f"{base}{FILE}") is not None
    assert officer.locator("#link-requests form").count() == 0  # only admins decide
    admin.screenshot(path=str(tmp_path / "3-request-waiting.png"), full_page=True)
    admin.click("#link-requests form[action$='/approve'] button")
    admin.wait_for_selector("#done")
    assert "申请已同意" in admin.inner_text("#done")
    assert "当前" in admin.locator("#links li[data-department=AMR]").last.inner_text()
    assert "已同意" in admin.inner_text("#link-requests")
    assert "刘洋" in admin.inner_text("#subject-record")
    admin.screenshot(path=str(tmp_path / "4-request-approved.png"), full_page=True)


def test_bind_and_unbind_devices_and_the_platform_admin_opens_the_file(
    plant: str, wb: Workbench, tmp_path: Path
) -> None:
    site, broker, db, browser, base = wb.site, wb.broker, wb.db, wb.browser, wb.base
    db.execute(
        "INSERT INTO device_bindings (device_id, credit_code, role) VALUES ('tank-7', %s, 'tank')",
        (plant,),
    )
    new = _unbound_device(broker, db)
    page = signed_in(browser, base, person(db, "张伟"))
    page.goto(f"{base}{FILE}")
    page.click("#devices summary")
    # A device bound to nothing yet is the platform admin's to bind.
    page.fill("#bind-form input[name=device_id]", new)
    page.fill("#bind-form input[name=role]", "gas_detector")
    page.click("#bind-form button[type=submit]")
    page.wait_for_selector("#err-device_id")
    assert "须由平台管理员绑定" in page.inner_text("#err-device_id")
    page.fill("#bind-form input[name=device_id]", "bad id")
    page.fill("#bind-form input[name=role]", "Tank!")
    page.click("#bind-form button[type=submit]")
    page.wait_for_selector("#err-role")
    assert "不是设备编号" in page.inner_text("#err-device_id")
    assert "不是设备角色" in page.inner_text("#err-role")
    page.screenshot(path=str(tmp_path / "1-bind-errors.png"), full_page=True)
    # The department's own device moves here from its other subject.
    page.fill("#bind-form input[name=device_id]", "tank-7")
    page.fill("#bind-form input[name=role]", "tank")
    page.fill("#bind-form input[name=point]", "罐区西侧")
    page.click("#bind-form button[type=submit]")
    page.wait_for_selector("#done")
    assert "设备已绑定" in page.inner_text("#done")
    assert "罐区西侧" in page.inner_text("#device-list tr[data-device-id='tank-7']")
    page.click(f"#device-list tr[data-device-id='{site['device']}'] button.unbind")
    page.wait_for_selector("#done")
    assert "设备已解绑" in page.inner_text("#done")
    assert page.locator(f"#device-list tr[data-device-id='{site['device']}']").count() == 0
    assert "解绑设备" in page.inner_text("#subject-record")
    page.screenshot(path=str(tmp_path / "2-bound-unbound.png"), full_page=True)
    assert db.execute(
        "SELECT credit_code FROM device_bindings WHERE device_id = 'tank-7'"
    ).fetchone() == (SUBJECT,)
    # The platform admin (BDB supervises nothing) opens the file and binds the new device.
    platform = signed_in(browser, base, person(db, "陈静", "BDB", "platform_admin"))
    response = platform.goto(f"{base}{FILE}")
    assert response is not None
    assert response.status == 200
    platform.click("#devices summary")
    platform.fill("#bind-form input[name=device_id]", new)
    platform.fill("#bind-form input[name=role]", "gas_detector")
    platform.click("#bind-form button[type=submit]")
    platform.wait_for_selector("#done")
    assert new in platform.inner_text("#device-list")
    assert platform.locator("#basic-form").count() == 0  # basic data is the departments'
    platform.screenshot(path=str(tmp_path / "3-platform-admin-file.png"), full_page=True)


def test_viewer_sees_no_edit_controls_and_is_refused(wb: Workbench, tmp_path: Path) -> None:
    site, db, browser, base = wb.site, wb.db, wb.browser, wb.base
    page = signed_in(browser, base, person(db, "王芳", role="viewer"))
    page.goto(f"{base}{FILE}")
    page.wait_for_selector("#basic")
    assert page.locator("main form").count() == 0
    assert page.locator("details.edit").count() == 0
    assert page.locator("button.unbind, button.end-link").count() == 0
    page.screenshot(path=str(tmp_path / "viewer-file.png"), full_page=True)
    token = page.get_attribute("meta[name=csrf-token]", "content")
    r = page.request.post(f"{base}{FILE}/basic", form={"name": "改名", "csrf_token": token or ""})
    assert r.status == 403
    viewer = {"Authorization": f"Bearer {site['viewer']}"}
    for path in ("/basic", "/credit", "/devices", f"/devices/{site['device']}/unbind"):
        assert httpx.post(f"{base}{FILE}{path}", headers=viewer).status_code == 403, path
    assert db.execute(
        "SELECT name FROM subjects WHERE credit_code = %s", (SUBJECT,)
    ).fetchone() == ("苏州某化工有限公司",)


def test_another_departments_subject_answers_404_on_the_edit_routes(
    site: dict[str, str], running: OffsiteApp, db: psycopg.Connection[Any]
) -> None:
    base = running.endpoints.http
    outsider = {"Authorization": f"Bearer {site['outsider']}"}
    form = {"name": "x", "latitude": "1", "longitude": "1", "device_id": "d", "role": "tank",
            "department": "AMR", "credit_grade": "A", "attributes": "a = 1"}  # fmt: skip
    with httpx.Client(base_url=base, headers=outsider) as c:
        unbind = f"/devices/{site['device']}/unbind"
        for path in ("/basic", "/limits", "/credit", "/departments", "/departments/EMB/end",
                     "/link-requests/1/approve", "/devices", unbind):  # fmt: skip
            r = c.post(f"{FILE}{path}", data=form)
            assert r.status_code == 404, (path, r.status_code, r.text[:200])
        assert c.get(f"{FILE}/readings/{site['device']}/lel").status_code == 404
        assert c.get(FILE).status_code == 404
    # A device of another subject is no chart of this one, even for its own department.
    officer = {"Authorization": f"Bearer {site['officer']}"}
    assert httpx.get(f"{base}{FILE}/readings/nowhere-1/lel", headers=officer).status_code == 404
    assert db.execute(
        "SELECT name FROM subjects WHERE credit_code = %s", (SUBJECT,)
    ).fetchone() == ("苏州某化工有限公司",)


def test_subject_pages_at_390px_with_every_form_open_and_an_error_shown(
    wb: Workbench, tmp_path: Path
) -> None:
    site, broker, db, browser, base = wb.site, wb.broker, wb.db, wb.browser, wb.base
    _breach(broker, site["device"])
    admin = person(db, "刘洋", role="admin")
    page = signed_in(browser, base, admin, width=390)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{base}{FILE}")
    page.locator("#charts .chart canvas").first.wait_for()
    _open_all_forms(page)
    page.screenshot(path=str(tmp_path / "1-file-390.png"), full_page=True)
    assert _no_sideways_scroll(page) <= 0, _widest(page)
    page.fill("#basic-form input[name=latitude]", "95")
    page.click("#basic-form button[type=submit]")
    page.wait_for_selector("#err-latitude")
    _open_all_forms(page)
    page.screenshot(path=str(tmp_path / "2-file-390-error.png"), full_page=True)
    assert _no_sideways_scroll(page) <= 0, _widest(page)
    page.goto(f"{base}/subjects")
    page.screenshot(path=str(tmp_path / "3-library-390.png"), full_page=True)
    assert _no_sideways_scroll(page) <= 0, _widest(page)


def test_import_check_only_then_import_and_a_malformed_form_answers_a_chinese_page(
    wb: Workbench, tmp_path: Path
) -> None:
    site, db, browser, base = wb.site, wb.db, wb.browser, wb.base
    page = signed_in(browser, base, person(db, "张伟"))
    csv = tmp_path / "new.csv"
    csv.write_text(f"统一社会信用代码,名称,风险等级\n{NEW},苏州某电镀有限公司,较大\n", "utf-8")
    page.goto(f"{base}/subjects")
    page.set_input_files("#import-form input[type=file]", str(csv))
    page.check("#import-form input[name=dry_run]")
    page.click("#import-form button")
    page.wait_for_selector("#report")
    assert "校验通过，未导入：全部 1 行均可导入（将新建 1" in page.inner_text("#dry-run-ok")
    page.screenshot(path=str(tmp_path / "1-import-checked.png"), full_page=True)
    stored = db.execute("SELECT count(*) FROM subjects WHERE credit_code = %s", (NEW,))
    assert stored.fetchone() == (0,)
    page.uncheck("#import-form input[name=dry_run]")
    page.click("#import-form button")
    page.wait_for_selector("#report >> text=导入 1 行")
    page.goto(f"{base}/subjects/{NEW}")
    assert page.inner_text("#risk-level") == "较大风险"
    # Device roles are shown by their Chinese names, the code kept for machines.
    page.goto(f"{base}{FILE}")
    role = page.locator(f"#device-list tr[data-device-id='{site['device']}'] td[data-role]")
    assert role.inner_text() == "可燃气体探测器"
    assert role.get_attribute("data-role") == "gas_detector"
    # A form FastAPI itself refuses (an id that is no number) is a page, not JSON.
    token = page.get_attribute("meta[name=csrf-token]", "content") or ""
    r = page.request.post(f"{base}{FILE}/link-requests/abc/approve", form={"csrf_token": token})
    assert r.status == 422
    assert "text/html" in r.headers["content-type"]
    assert "表单有误" in r.text()
    assert "int_parsing" not in r.text()
    # The API keeps its JSON answer for the same kind of mistake.
    api = httpx.post(
        f"{base}/api/v1/link-requests/abc/approve",
        headers={"Authorization": f"Bearer {site['officer']}"},
    )
    assert api.status_code == 422
    assert api.json()["detail"][0]["loc"][-1] == "request_id"


def test_add_a_subject_in_the_page_and_ask_to_join_one_another_department_has(
    wb: Workbench, tmp_path: Path
) -> None:
    db, browser, base = wb.db, wb.browser, wb.base
    login = person(db, "张伟")
    page = signed_in(browser, base, login)
    page.goto(f"{base}/subjects")
    page.click("#new-subject summary")
    form = page.locator("#new-subject-form")
    form.locator("input[name=credit_code]").fill(NEW[:-1] + ("0" if NEW[-1] != "0" else "1"))
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#err-credit_code")
    assert "不是有效的统一社会信用代码" in page.inner_text("#err-credit_code")
    assert "必填" in page.inner_text("#err-name")
    page.screenshot(path=str(tmp_path / "1-new-subject-errors.png"), full_page=True)
    form = page.locator("#new-subject-form")
    form.locator("input[name=credit_code]").fill(NEW)
    form.locator("input[name=name]").fill("苏州某电镀有限公司")
    form.locator("input[name=grid]").fill("G-08")
    form.locator("select[name=credit_grade]").select_option("yellow")
    form.locator("select[name=risk_level]").select_option("considerable")
    form.locator("button[type=submit]").click()
    page.wait_for_url(f"{base}/subjects/{NEW}?done=created#basic")
    assert "监管对象已新建" in page.inner_text("#done")
    assert "较大风险" in page.inner_text("#risk-level")
    assert "黄色" in page.inner_text("#credit-grade")
    assert "市应急局" in page.inner_text("#links")
    record = page.inner_text("#subject-record")
    assert f"张伟 ({login})" in record
    assert "新建监管对象" in record
    page.screenshot(path=str(tmp_path / "2-new-subject-file.png"), full_page=True)
    # AMR's officer adds the same code: the library says who has it and offers to ask.
    amr = signed_in(browser, base, person(db, "赵强", "AMR"))
    amr.goto(f"{base}/subjects")
    amr.click("#new-subject summary")
    amr.fill("#new-subject-form input[name=credit_code]", NEW)
    amr.fill("#new-subject-form input[name=name]", "苏州某电镀有限公司")
    amr.click("#new-subject-form button[type=submit]")
    amr.wait_for_selector("#err-credit_code")
    assert "已由其他部门纳入对象库" in amr.inner_text("#err-credit_code")
    amr.screenshot(path=str(tmp_path / "3-exists-elsewhere.png"), full_page=True)
    amr.click("#join-form button")
    amr.wait_for_url(f"{base}/subjects?done=requested")
    assert "等待" in amr.inner_text("#done")
    assert db.execute(
        "SELECT department, state FROM subject_link_requests WHERE credit_code = %s", (NEW,)
    ).fetchall() == [("AMR", "pending")]
    # EMB's admin sees the request on the file and consents there.
    admin = signed_in(browser, base, person(db, "刘洋", role="admin"))
    admin.goto(f"{base}/subjects/{NEW}")
    admin.click("#link-requests form[action$='/approve'] button")
    admin.wait_for_selector("#done")
    amr.goto(f"{base}/subjects/{NEW}")
    assert "苏州某电镀有限公司" in amr.inner_text("h1")
    amr.screenshot(path=str(tmp_path / "4-joined.png"), full_page=True)
