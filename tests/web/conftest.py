"""Fixtures of the workbench tests: a running offsite, Debian's Chromium under Playwright."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import psycopg
import pytest

from api import people
from api.auth import create_key
from offsite.app import OffsiteApp
from offsite.embedded import EmbeddedBroker
from tests.helpers import CHROMIUM_FLAGS, wait_until

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SUBJECT = "91320500MA1MXXXX24"  # a valid unified social credit code (GB 32100-2015)
OTHER = "91320500MA1NXXXX11"
PASSWORD = "correct horse battery 7"


@pytest.fixture
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def site(db: psycopg.Connection[Any]) -> dict[str, str]:
    """A gas-monitored chemical plant supervised by EMB and EEB, with a device bound."""
    device = f"gas-{uuid.uuid4().hex[:6]}"
    db.execute(
        "INSERT INTO subjects (credit_code, name, address, grid, industry, credit_grade,"
        " latitude, longitude) VALUES (%s, '苏州某化工有限公司', '苏州市工业园区星湖街1号',"
        " 'G-07', 'hazardous_chemicals', 'C', 31.2989, 120.7363)",
        (SUBJECT,),
    )
    for dept in ("EMB", "EEB"):
        db.execute(
            "INSERT INTO subject_departments (credit_code, department) VALUES (%s, %s)",
            (SUBJECT, dept),
        )
    db.execute(
        "INSERT INTO device_bindings (device_id, credit_code, role)"
        " VALUES (%s, %s, 'gas_detector')",
        (device, SUBJECT),
    )
    return {
        "device": device,
        "officer": create_key(db, "EMB", "officer", "张伟"),
        "eeb": create_key(db, "EEB", "officer", "李娜"),
        "viewer": create_key(db, "EMB", "viewer", "王芳"),
        "outsider": create_key(db, "AMR", "officer", "赵强"),
    }


def run_offsite(settings: Any) -> Iterator[OffsiteApp]:
    """offsite started with `settings`, once connected to the broker (a fixture's body)."""
    with OffsiteApp(settings) as app:
        wait_until(lambda: app.readiness()["broker"], what="broker connection")
        yield app


@pytest.fixture
def offsite_settings() -> dict[str, Any]:
    """Settings of the workbench's offsite beyond the test's database and broker: none here.
    A test file overrides this fixture (a test picks its case by indirect parametrization)."""
    return {}


@pytest.fixture
def running(
    make_settings: Callable[..., Any], offsite_settings: dict[str, Any]
) -> Iterator[OffsiteApp]:
    yield from run_offsite(make_settings(**offsite_settings))


def webhook_alerts(url: str, **retries: float) -> dict[str, Any]:
    """Alerts settings sending EMB's alerts to a webhook at `url`, with these retries."""
    route = {"name": "emb-hook", "kind": "webhook", "url": url, "secret": "s3cret",
             "department": "EMB", "timeout_s": 2}  # fmt: skip
    return {"routes": [route], **retries}


def person(db: psycopg.Connection[Any], name: str, dept: str = "EMB", role: str = "officer") -> str:
    """A new person who signs in with PASSWORD: their login."""
    login = f"p-{uuid.uuid4().hex[:8]}"
    people.create_person(db, login, name, dept, role, PASSWORD)
    return login


def wait_for_alert(db: psycopg.Connection[Any]) -> int:
    """The id of the site's alert, once there is one."""

    def find() -> int | None:
        row = db.execute("SELECT id FROM alerts WHERE credit_code = %s", (SUBJECT,)).fetchone()
        return row[0] if row else None

    return int(wait_until(find, timeout=20, what="the alert row"))


class Workbench(NamedTuple):
    """What a workbench test drives: the seeded site, offsite running, its broker and
    database, and the browser."""

    site: dict[str, str]
    app: OffsiteApp
    broker: EmbeddedBroker
    db: psycopg.Connection[Any]
    browser: Any

    @property
    def base(self) -> str:
        return self.app.endpoints.http

    def page_as(self, key: str, path: str) -> Any:
        """A page with the site's `key` ("officer", "viewer", ...) open at `path`."""
        page = page_for(self.browser, self.site[key])
        page.goto(f"{self.base}{path}")
        return page


@pytest.fixture
def wb(
    site: dict[str, str],
    running: OffsiteApp,
    broker: EmbeddedBroker,
    db: psycopg.Connection[Any],
    browser: Any,
) -> Workbench:
    return Workbench(site, running, broker, db, browser)


def page_for(browser: Any, key: str, width: int = 1400, height: int = 900) -> Any:
    context = browser.new_context(
        extra_http_headers={"Authorization": f"Bearer {key}"},
        viewport={"width": width, "height": height},
        locale="zh-CN",
    )
    return context.new_page()


def signed_in(browser: Any, base: str, login: str, width: int = 1400, **options: Any) -> Any:
    """A fresh browser signed in through the real /login form (`options` go to the context,
    e.g. permissions)."""
    context = browser.new_context(
        viewport={"width": width, "height": 900}, locale="zh-CN", **options
    )
    page = context.new_page()
    page.goto(f"{base}/login?next=/")
    page.fill("#login", login)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    return page
