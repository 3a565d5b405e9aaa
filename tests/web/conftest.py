"""Fixtures of the workbench tests: a running offsite, Debian's Chromium under Playwright."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from api.auth import create_key
from offsite.app import OffsiteApp
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


@pytest.fixture
def running(make_settings: Callable[..., Any]) -> Iterator[OffsiteApp]:
    with OffsiteApp(make_settings()) as app:
        wait_until(lambda: app.readiness()["broker"], what="broker connection")
        yield app


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
