"""`offsite run` starts with a deadline, fails fast on a refused login, obeys signals, and
stops in reverse order naming what did not stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from offsite.app import OffsiteApp, is_fatal_connect_error
from rules.service import RuleService
from tests.alerts.support import free_port
from tests.helpers import wait_until


def _run(tmp_path: Path, db_url: str, **env: str) -> subprocess.Popen[str]:
    environ = {
        **os.environ,
        "OFFSITE_STATE_DIR": str(tmp_path / "state"),
        "OFFSITE_DATABASE__URL": db_url,
        # Never reached in these tests: the database step comes first.
        "OFFSITE_MQTT__URL": f"mqtt://127.0.0.1:{free_port()}",
        "OFFSITE_HTTP__PORT": "0",
        **env,
    }
    environ.pop("OFFSITE_CONFIG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "offsite.cli", "run"],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


class _Stderr:
    """Reads a child's stderr on a thread, so the test can wait for a line."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert proc.stderr is not None
        stream = self._stream = proc.stderr
        self._thread = threading.Thread(target=lambda: self.lines.extend(stream), daemon=True)
        self._thread.start()

    def text(self) -> str:
        return "".join(self.lines)

    def done(self) -> str:
        self._thread.join(10)
        self._stream.close()
        return self.text()


def _refusing_url() -> str:
    return f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"


def test_a_database_that_never_answers_ends_the_start_at_its_deadline(tmp_path: Path) -> None:
    proc = _run(tmp_path, _refusing_url(), OFFSITE_DATABASE__START_TIMEOUT_S="2")
    err = _Stderr(proc)
    assert proc.wait(60) == 1
    text = err.done()
    assert "cannot start" in text
    assert "did not answer within database.start_timeout_s = 2 s" in text


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_interrupts_the_start_while_the_database_is_retried(
    tmp_path: Path, signum: signal.Signals
) -> None:
    proc = _run(tmp_path, _refusing_url())
    err = _Stderr(proc)
    try:
        wait_until(lambda: "database not reachable" in err.text(), 60, what="the retry")
        proc.send_signal(signum)
        assert proc.wait(30) == 128 + signum
    finally:
        if proc.poll() is None:
            proc.kill()
    assert f"interrupted by {signum.name} while starting" in err.done()


def test_a_refused_login_fails_at_once_with_a_clear_message(tmp_path: Path, db_url: str) -> None:
    info = psycopg.conninfo.conninfo_to_dict(db_url)
    info["user"] = "nobody_here"
    proc = _run(
        tmp_path,
        psycopg.conninfo.make_conninfo("", **info),
        # A refused login must not be retried until this deadline.
        OFFSITE_DATABASE__START_TIMEOUT_S="600",
    )
    err = _Stderr(proc)
    assert proc.wait(60) == 1
    text = err.done()
    assert "refused offsite" in text
    assert 'role "nobody_here" does not exist' in text
    assert "database not reachable" not in text


def test_a_database_that_does_not_exist_fails_at_once(tmp_path: Path, db_url: str) -> None:
    info = psycopg.conninfo.conninfo_to_dict(db_url)
    info["dbname"] = "no_such_database_here"
    proc = _run(tmp_path, psycopg.conninfo.make_conninfo("", **info),
                OFFSITE_DATABASE__START_TIMEOUT_S="600")  # fmt: skip
    err = _Stderr(proc)
    assert proc.wait(60) == 1
    assert 'database "no_such_database_here" does not exist' in err.done()


@pytest.mark.parametrize(
    ("message", "fatal"),
    [
        ('connection failed: FATAL:  password authentication failed for user "offsite"', True),
        ("connection failed: fe_sendauth: no password supplied", True),
        ('FATAL:  no pg_hba.conf entry for host "10.0.0.9", user "offsite"', True),
        ("connection failed: Connection refused\n\tIs the server running", False),
        ("connection failed: timeout expired", False),
        ("FATAL:  the database system is starting up", False),
    ],
)
def test_what_counts_as_a_refusal_a_retry_cannot_fix(message: str, fatal: bool) -> None:
    # This server trusts every local login, so a wrong password cannot be produced here;
    # the classifier is checked on libpq's own wording.
    assert is_fatal_connect_error(psycopg.OperationalError(message)) is fatal


def test_stop_names_a_thread_that_did_not_stop(
    make_settings: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    real_stop = RuleService.stop

    def stuck_step(self: RuleService) -> bool:
        release.wait(30)
        return False

    monkeypatch.setattr(RuleService, "_step", stuck_step)
    monkeypatch.setattr(RuleService, "stop", lambda self, timeout=30.0: real_stop(self, 0.5))
    app = OffsiteApp(make_settings())
    app.start()
    try:
        left = app.stop()
    finally:
        release.set()
    assert "rules-engine" in left
