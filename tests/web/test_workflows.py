"""Workbench workflows in Chromium: findings by two departments, subject file, CSV import,
a restart under an open tab, and the catalogs being complete."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from babel.messages.pofile import read_po

from offsite.app import OffsiteApp
from offsite.embedded import EmbeddedBroker
from subjects.credit_code import make
from tests.helpers import wait_until
from tests.web.conftest import SUBJECT, Workbench, page_for, wait_for_alert
from tests.web.test_board import _breach, raised


def _photo(tmp_path: Path) -> Path:
    from PIL import Image

    path = tmp_path / "site.jpg"
    Image.new("RGB", (64, 48), (200, 80, 40)).save(path, "JPEG")
    return path


def test_findings_by_two_departments_then_the_lead_closes(wb: Workbench, tmp_path: Path) -> None:
    site, db, browser, base = wb.site, wb.db, wb.browser, wb.base
    alert_id = raised(wb)
    lead = page_for(browser, site["officer"], width=390, height=844)  # in the field, on a phone
    lead.goto(f"{base}/alerts/{alert_id}")
    lead.click("#dispatch")
    lead.click("#dispatch-confirm")
    lead.wait_for_selector("#alert-state[data-state=dispatched]")
    task_id = db.execute(
        "SELECT task_id FROM task_alerts WHERE alert_id = %s", (alert_id,)
    ).fetchone()
    assert task_id is not None
    # The participant (EEB) records a finding with a photo from the camera input.
    eeb = page_for(browser, site["eeb"], width=390, height=844)
    eeb.goto(f"{base}/tasks")
    eeb.click(f"#tasks tr[data-task-id='{task_id[0]}'] a >> nth=0")
    assert eeb.locator("#finding-form input[type=file]").get_attribute("capture") == "environment"
    assert eeb.locator("#close-form").count() == 0  # only the lead closes
    eeb.fill("#finding-form textarea", "废水排口采样，COD 正常")
    eeb.set_input_files("#finding-form input[type=file]", str(_photo(tmp_path)))
    eeb.click("#finding-form button")
    eeb.wait_for_selector("#findings li[data-department=EEB] img")
    eeb.screenshot(path=str(tmp_path / "finding-eeb.png"), full_page=True)
    # The lead records its own finding and closes the task.
    lead.goto(f"{base}/tasks/{task_id[0]}")
    lead.fill("#finding-form textarea", "可燃气体报警器已复位，泄漏点已封堵")
    lead.click("#finding-form button")
    lead.wait_for_selector("#findings li[data-department=EMB]")
    lead.fill("#close-form textarea", "联合检查完成，隐患已整改")
    lead.click("#close-form button")
    lead.wait_for_selector("#task-status[data-status=done]")
    wide = lead.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert wide <= 0
    lead.screenshot(path=str(tmp_path / "task-closed.png"), full_page=True)
    state = db.execute("SELECT state FROM alerts WHERE id = %s", (alert_id,)).fetchone()
    assert state == ("resolved",)
    photo = db.execute(
        "SELECT p.sha256, p.size_bytes FROM finding_photos p"
        " JOIN task_finding_photos fp ON fp.sha256 = p.sha256"
        " JOIN task_findings f ON f.id = fp.finding_id WHERE f.department = 'EEB'"
    ).fetchone()
    assert photo is not None
    assert photo[0] in eeb.inner_text("#findings")
    # The photo is served to the participants, and to no one else.
    import httpx

    for key, code in ((site["eeb"], 200), (site["outsider"], 404)):
        r = httpx.get(
            f"{base}/findings/photos/{photo[0]}", headers={"Authorization": f"Bearer {key}"}
        )
        assert r.status_code == code
    assert (
        httpx.get(
            f"{base}/tasks/{task_id[0]}", headers={"Authorization": f"Bearer {site['outsider']}"}
        ).status_code
        == 404
    )


def test_subject_file_and_csv_import_report(wb: Workbench, tmp_path: Path) -> None:
    site, db, base = wb.site, wb.db, wb.base
    raised(wb)
    page = wb.page_as("officer", "/subjects?q=化工")
    page.click(f"a[href='/subjects/{SUBJECT}']")
    page.wait_for_selector("#basic")
    text = page.inner_text("main")
    assert "苏州市工业园区星湖街1号" in text
    assert "生态环境局" in page.inner_text("#departments")
    assert site["device"] in page.inner_text("#devices")
    assert "在线" in page.inner_text("#devices")
    assert "严重" in page.inner_text("#subject-alerts")
    page.screenshot(path=str(tmp_path / "subject-file.png"), full_page=True)
    # A CSV with one bad row: nothing imported, the row and column shown.
    good, bad = make("9", "1", "320500", "MA1PXXXX"), "91320500MA1PXXXX9Z"
    csv = (
        "统一社会信用代码,名称,grid,industry,信用等级,departments\n"
        f"{good},苏州某印染有限公司,G-09,textiles,B,EMB\n"
        f"{bad},错误代码企业,G-09,textiles,B,EMB\n"
    )
    path = tmp_path / "subjects.csv"
    path.write_text(csv, encoding="utf-8")
    page.goto(f"{base}/subjects")
    page.set_input_files("#import-form input[type=file]", str(path))
    page.click("#import-form button")
    page.wait_for_selector("#report")
    assert page.locator("#report tr.import-error").count() >= 1
    assert "未导入任何数据" in page.inner_text("#report")
    page.screenshot(path=str(tmp_path / "import-rejected.png"), full_page=True)
    path.write_text(csv.splitlines()[0] + "\n" + csv.splitlines()[1] + "\n", encoding="utf-8")
    page.set_input_files("#import-form input[type=file]", str(path))
    page.click("#import-form button")
    page.wait_for_selector("#report .ok")
    assert "新增 1" in page.inner_text("#report")
    page.screenshot(path=str(tmp_path / "import-ok.png"), full_page=True)
    assert db.execute("SELECT name FROM subjects WHERE credit_code = %s", (good,)).fetchone() == (
        "苏州某印染有限公司",
    )


def test_tab_opened_before_a_restart_shows_an_alert_raised_during_it(
    site: dict[str, str],
    make_settings: Callable[..., Any],
    broker: EmbeddedBroker,
    db: psycopg.Connection[Any],
    browser: Any,
    tmp_path: Path,
) -> None:
    settings = make_settings()
    with OffsiteApp(settings) as app:
        wait_until(lambda: app.readiness()["broker"], what="broker connection")
        port = app.http_port
        page = page_for(browser, site["officer"])
        page.goto(f"{app.endpoints.http}/")
        page.wait_for_selector("#live.live")
        assert page.locator("#alerts tr[data-alert-id]").count() == 0
    page.wait_for_selector("#stale:not([hidden])", timeout=15_000)
    page.screenshot(path=str(tmp_path / "stale.png"), full_page=True)
    # The breach is published while offsite is down: the broker keeps it for ingest's
    # persistent session, so the alert is raised as offsite comes back, before the tab has
    # reconnected; no event reaches the tab for it, only the reload on reconnect shows it.
    _breach(broker, site["device"])
    restarted = settings.model_copy(
        update={"http": settings.http.model_copy(update={"port": port})}
    )
    with OffsiteApp(restarted) as app:
        wait_for_alert(db)
        page.locator("#alerts tr[data-alert-id]").first.wait_for(timeout=20_000)
        page.wait_for_selector("#stale[hidden]", state="attached")
        page.screenshot(path=str(tmp_path / "after-restart.png"), full_page=True)


def test_every_message_and_rule_title_has_a_chinese_translation() -> None:
    from rules.loader import load_directory
    from subjects.departments import load_departments
    from web.i18n import translations
    from web.rule_titles import RULE_TITLES

    po = Path(__file__).parents[2] / "web/locale/zh_CN/LC_MESSAGES/messages.po"
    catalog = read_po(io.BytesIO(po.read_bytes()), locale="zh_CN")
    untranslated = [m.id for m in catalog if m.id and not m.string]
    assert untranslated == []
    zh = translations("zh_CN").gettext
    codes = [d["code"] for d in load_departments()]
    shipped = load_directory(Path(__file__).parents[2] / "deploy/rules", codes)
    missing = [r.title for r in shipped.rules if zh(r.title) == r.title]
    assert missing == []
    assert set(RULE_TITLES) >= {r.title for r in shipped.rules}


def test_dry_run_charts_what_a_rule_would_have_raised(wb: Workbench, tmp_path: Path) -> None:
    site, base = wb.site, wb.base
    raised(wb)
    page = wb.page_as("officer", "/rules")
    page.click("a[href='/rules/gas-lel-alarm-2/dry-run']")
    page.select_option("select[name=hours]", "6")
    page.click("#dry-run")
    page.wait_for_selector("#dry-chart[data-rendered='1']")
    assert "将产生 1 条线索" in page.inner_text("#dry-count")
    page.screenshot(path=str(tmp_path / "dry-run.png"), full_page=True)
    # Another department's rule is not offered to EEB's officer, and answers 404.
    import httpx

    r = httpx.get(
        f"{base}/rules/gas-lel-alarm-2/dry-run?hours=6",
        headers={"Authorization": f"Bearer {site['eeb']}"},
    )
    assert r.status_code == 404
