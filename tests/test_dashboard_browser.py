"""The live board in a real Chromium: a breach published over MQTT shows up and is acknowledged."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from api.auth import create_key
from ingest.topics import telemetry_topic
from offsite.app import OffsiteApp
from offsite.embedded import EmbeddedBroker
from tests.helpers import Publisher, wait_until

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="Debian's chromium and chromium-driver are not installed (.ci/run installs them)",
)
SUBJECT = "91320500MA1MXXXX24"  # a valid unified social credit code (GB 32100-2015)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,900",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _first_row(driver: Any, attr: str) -> str | None:
    """An attribute or the text of the first alert row; the board re-renders rows on each
    event, so elements are looked up afresh every time."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        rows = driver.find_elements(By.CSS_SELECTOR, "#alerts tr[data-alert-id]")
        if not rows:
            return None
        return str(rows[0].text if attr == "text" else rows[0].get_attribute(attr))
    except StaleElementReferenceException:
        return None


def _row_state(driver: Any) -> str | None:
    return _first_row(driver, "data-state")


def _click_ack(driver: Any) -> bool:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        driver.find_element(By.CSS_SELECTOR, "#alerts button.ack").click()
        return True
    except StaleElementReferenceException:
        return False


def test_breach_appears_live_and_is_acknowledged(
    make_settings: Callable[..., Any],
    broker: EmbeddedBroker,
    db: psycopg.Connection[Any],
    browser: Any,
    tmp_path: Path,
) -> None:
    from selenium.webdriver.common.by import By

    device = f"gas-{uuid.uuid4().hex[:6]}"
    db.execute(
        "INSERT INTO subjects (credit_code, name, grid, industry, credit_grade)"
        " VALUES (%s, '苏州某化工有限公司', 'G-07', 'hazardous_chemicals', 'C')",
        (SUBJECT,),
    )
    db.execute("INSERT INTO subject_departments (credit_code, department) VALUES (%s, 'EMB')",
               (SUBJECT,))  # fmt: skip
    db.execute(
        "INSERT INTO device_bindings (device_id, credit_code, role)"
        " VALUES (%s, %s, 'gas_detector')",
        (device, SUBJECT),
    )
    key = create_key(db, "EMB", "officer")
    with OffsiteApp(make_settings()) as app:
        wait_until(lambda: app.readiness()["broker"], what="broker connection")
        browser.get(f"{app.endpoints.http}/board")
        browser.find_element(By.ID, "key").send_keys(key)
        browser.find_element(By.CSS_SELECTOR, "#keyform button").click()
        wait_until(
            lambda: browser.find_element(By.ID, "conn").text.startswith("live"),
            what="the board's event stream to connect",
        )
        pub = Publisher(broker.port)
        pub.publish(
            telemetry_topic(device), f'{{"ts": {int(time.time() * 1000)}, "values": {{"lel": 61}}}}'
        )
        wait_until(lambda: _row_state(browser) == "open", timeout=20, what="the alert row")
        # Both %LEL rules fire (25 and 50): one alert on the subject, at the higher severity.
        text = wait_until(
            lambda: (t := _first_row(browser, "text")) and "critical" in t and t,
            what="the alert to reach critical",
        )
        assert SUBJECT in text
        assert browser.find_element(By.ID, "n-open").text == "1"
        browser.save_screenshot(str(tmp_path / "board-open.png"))
        wait_until(lambda: _click_ack(browser), what="the Acknowledge button")
        wait_until(lambda: _row_state(browser) == "acknowledged", what="the acknowledged state")
        assert browser.find_element(By.ID, "n-acknowledged").text == "1"
        browser.save_screenshot(str(tmp_path / "board-acknowledged.png"))
        pub.close()
    state = db.execute("SELECT state FROM alerts WHERE credit_code = %s", (SUBJECT,)).fetchone()
    assert state == ("acknowledged",)
