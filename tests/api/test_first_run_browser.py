"""First run in a real Chromium: `offsite run` prints the admin's password; sign in and out."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from offsite.embedded import EmbeddedBroker
from tests.helpers import CHROMIUM_FLAGS, wait_until

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    not CHROMIUM, reason="Debian's chromium is not installed (.ci/run installs it)"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Running:
    """`offsite run` in a child process, its stdout collected line by line."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "offsite.cli", "run"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def running(db_url: str, broker: EmbeddedBroker, tmp_path: Path) -> Iterator[tuple[Running, str]]:
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OFFSITE_")},
        "OFFSITE_DATABASE__URL": db_url,
        "OFFSITE_MQTT__URL": broker.url,
        "OFFSITE_MQTT__CLIENT_ID": f"offsite-first-run-{port}",
        "OFFSITE_HTTP__PORT": str(port),
        "OFFSITE_STATE_DIR": str(tmp_path / "state"),
        "OFFSITE_VIDEO__ENABLED": "false",
    }
    run = started(env)
    try:
        yield run, f"http://127.0.0.1:{port}"
    finally:
        run.stop()


def started(env: dict[str, str]) -> Running:
    run = Running(env)
    wait_until(
        lambda: any("Ctrl-C stops it." in x for x in run.lines) or run.proc.poll() is not None,
        timeout=90,
        what="offsite run to print its banner",
    )
    assert run.proc.poll() is None, "\n".join(run.lines)
    return run


def _shot(page: Any, path: Path) -> None:
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 0


def test_first_run_prints_a_password_and_a_person_signs_in_and_out(
    running: tuple[Running, str], db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    run, base = running
    banner = "\n".join(run.lines)
    assert f"workbench {base}/" in banner
    sign_in_line = next(x for x in run.lines if "sign in as  admin / " in x)
    password = sign_in_line.split("admin / ")[1].strip()
    assert len(password) >= 12
    stored = db.execute("SELECT role, password_hash FROM users WHERE login = 'admin'").fetchone()
    assert stored is not None
    assert stored[0] == "platform_admin"
    assert password not in stored[1]

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 800}, locale="zh-CN")
            page.goto(f"{base}/login?next=/logout")
            _shot(page, tmp_path / "1-login.png")
            # A wrong password: a clear Chinese error that does not say which part was wrong.
            page.fill("#login", "admin")
            page.fill("#password", "not the password")
            page.click("button[type=submit]")
            page.wait_for_selector(".error")
            assert "登录名或密码不正确" in page.inner_text(".error")
            _shot(page, tmp_path / "2-wrong-password.png")
            # No sideways scrolling at phone width.
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

            page.fill("#password", password)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/logout")
            assert "平台管理员 (admin)" in page.inner_text("main")
            _shot(page, tmp_path / "3-signed-in.png")
            cookies = {c["name"]: c for c in page.context.cookies()}
            assert cookies["offsite_session"]["httpOnly"] is True
            assert cookies["offsite_session"]["sameSite"] == "Lax"
            # The session is invisible to scripts in the page.
            assert "offsite_session" not in page.evaluate("document.cookie")
            me = page.request.get(f"{base}/api/v1/me").json()
            assert me["role"] == "platform_admin"

            page.click("button[type=submit]")  # 退出登录
            page.wait_for_url(f"{base}/login?signed_out=1")
            assert "已退出登录" in page.inner_text("main")
            _shot(page, tmp_path / "4-signed-out.png")
            assert page.request.get(f"{base}/api/v1/me").status == 401

            # Signed out, the board sends the browser to /login and back after signing in.
            page.goto(f"{base}/")
            page.wait_for_url(f"{base}/login?next=%2F")
            page.fill("#login", "admin")
            page.fill("#password", password)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/")
            page.wait_for_selector("a.logout")
            _shot(page, tmp_path / "5-board.png")
            page.click("a.logout")
            page.wait_for_url(f"{base}/logout")
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/login?signed_out=1")
            assert page.request.get(f"{base}/api/v1/me").status == 401
        finally:
            browser.close()

    # A second start finds an account and prints no password.
    run.stop()
    again = started(run.env)
    try:
        assert not any("sign in as" in x for x in again.lines)
        assert f"workbench {base}/" in "\n".join(again.lines)
    finally:
        again.stop()
    assert db.execute("SELECT count(*) FROM users").fetchone() == (1,)
