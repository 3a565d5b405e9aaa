"""The clue -> alert hand-off is durable: a clue committed before a crash becomes one alert."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from alerts import handoff
from alerts.service import AlertService
from alerts.store import AlertStore, Outcome
from offsite.app import OffsiteApp
from offsite.embedded import EmbeddedBroker
from rules.models import ClueEvent
from tests.alerts.support import (
    Receiver,
    emb_webhook,
    free_port,
    running_receiver,
    send_gas_alarm,
    tank_farm,
)
from tests.alerts.test_e2e import RULE
from tests.helpers import Publisher, scalar, wait_until


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from running_receiver()


@pytest.fixture
def site(db: psycopg.Connection[Any], tmp_path: Path) -> Path:
    """A gas detector bound to a subject and the rule that fires on it; the rules folder."""
    return tank_farm(db, tmp_path, RULE)


@pytest.fixture
def settings(make_settings: Callable[..., Any], site: Path, receiver: Receiver) -> Any:
    """offsite with the site's rules and EMB's webhook at the receiver, polled every 0.2 s."""
    route = emb_webhook(receiver)
    return make_settings(
        rules={"directory": str(site)}, alerts={"routes": [route], "outbox_poll_s": 0.2}
    )


def _fire(broker: EmbeddedBroker) -> None:
    pub = Publisher(broker.port)
    try:
        send_gas_alarm(pub, int(time.time() * 1000))
    finally:
        pub.close()


def test_a_clue_committed_before_a_crash_becomes_one_alert_after_restart(
    settings: Any,
    broker: EmbeddedBroker,
    db: psycopg.Connection[Any],
    receiver: Receiver,
) -> None:
    # The fault: the process dies after rules committed the clue and before alerts applied
    # it. Alerts' threads never run, so whatever the hand-off held in memory is lost.
    with pytest.MonkeyPatch.context() as m:
        m.setattr(AlertService, "start", lambda self: None)
        with OffsiteApp(settings) as app:
            wait_until(lambda: app.readiness()["broker"], what="broker connection")
            _fire(broker)
            wait_until(lambda: scalar(db, "SELECT count(*) FROM clues WHERE status = 'firing'"),
                       30, what="the committed clue")  # fmt: skip
    assert scalar(db, "SELECT count(*) FROM alerts") == 0

    with OffsiteApp(settings):
        wait_until(receiver.bodies, 30, what="the webhook after restart")
    # Once more: a second restart applies nothing twice.
    with OffsiteApp(settings) as app:
        service = app.api_context.get(AlertService) if app.api_context else None
        assert isinstance(service, AlertService)
        assert service.drain()
        time.sleep(1.0)  # the outbox polls every 0.2 s: give a duplicate the chance to show
    assert scalar(db, "SELECT count(*) FROM alerts") == 1
    assert scalar(db, "SELECT count(*) FROM alert_clues") == 1
    assert scalar(db, "SELECT count(*) FROM outbox") == 1
    assert len(receiver.bodies()) == 1
    assert json.loads(receiver.bodies()[0].body)["event"] == "opened"
    mark = scalar(db, "SELECT seq FROM alert_clue_watermark")
    assert mark == scalar(db, "SELECT max(change_seq) FROM clues")


def test_a_clue_that_fails_to_apply_is_retried_and_alerting_goes_on(
    settings: Any,
    broker: EmbeddedBroker,
    db: psycopg.Connection[Any],
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(handoff, "RETRY_MIN_S", 0.5)
    real = AlertStore.apply_clue
    failures: list[int] = []

    def flaky(
        self: AlertStore, conn: psycopg.Connection[Any], event: ClueEvent, advance: bool = False
    ) -> Outcome:
        if not failures:
            failures.append(event.clue_id)
            raise ValueError("injected fault")
        return real(self, conn, event, advance)

    monkeypatch.setattr(AlertStore, "apply_clue", flaky)
    with OffsiteApp(settings) as app:
        wait_until(lambda: app.readiness()["broker"], what="broker connection")
        _fire(broker)
        wait_until(lambda: failures, 30, what="the injected failure")
        wait_until(receiver.bodies, 30, what="the webhook after the retry")
    assert scalar(db, "SELECT count(*) FROM alerts") == 1
    assert scalar(db, "SELECT count(*) FROM alert_clue_retries") == 0
    assert len(receiver.bodies()) == 1


def test_offsite_killed_between_the_clue_and_its_alert_makes_one_alert_after_restart(
    broker: EmbeddedBroker,
    db_url: str,
    db: psycopg.Connection[Any],
    site: Path,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    config = tmp_path / "offsite.yaml"
    route = emb_webhook(receiver)
    config.write_text(
        json.dumps(
            {
                "state_dir": str(tmp_path / "state"),
                "database": {"url": db_url},
                "mqtt": {"url": broker.url, "client_id": f"offsite-kill-{free_port()}"},
                "http": {"port": 0},
                "rules": {"directory": str(site)},
                "alerts": {"routes": [route], "outbox_poll_s": 0.2},
            }
        ),
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFSITE_")}
    env["OFFSITE_CONFIG"] = str(config)

    def run() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "offsite.cli", "run"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )

    def started(proc: subprocess.Popen[bytes]) -> None:
        """Wait for the banner, then for the broker connection in /readyz."""
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "offsite is running" once every service is up
        assert b"offsite is running" in line, line
        while not (banner := proc.stdout.readline().split()) or banner[0] != b"HTTP":
            assert banner or proc.poll() is None, "the banner has no HTTP line"
        http = banner[1].decode()  # "  HTTP      http://h:p  (...)"

        def connected() -> bool:
            checks = httpx.get(f"{http}/readyz", timeout=5).json()["checks"]
            return bool(checks["broker"])

        wait_until(connected, 30, what="the broker connection")

    # The alerts tables are locked, so the alert's transaction waits after the clue's commit;
    # the process is killed in that window, which is where the hand-off used to lose it.
    with psycopg.connect(db_url) as locker:
        locker.execute("LOCK TABLE alerts IN ACCESS EXCLUSIVE MODE")
        first = run()
        try:
            started(first)
            _fire(broker)
            wait_until(lambda: scalar(db, "SELECT count(*) FROM clues WHERE status = 'firing'"),
                       30, what="the committed clue")  # fmt: skip
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(30)
            assert first.stdout is not None
            first.stdout.close()
        locker.rollback()
    assert scalar(db, "SELECT count(*) FROM alerts") == 0

    for _ in range(2):  # restart, then once more: nothing twice
        proc = run()
        try:
            started(proc)
            wait_until(receiver.bodies, 30, what="the webhook after restart")
            wait_until(lambda: scalar(db, "SELECT seq FROM alert_clue_watermark")
                       == scalar(db, "SELECT max(change_seq) FROM clues"),
                       30, what="the watermark caught up")  # fmt: skip
            time.sleep(1.0)  # the outbox polls every 0.2 s: a duplicate would show
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0
            assert proc.stdout is not None
            proc.stdout.close()
    assert scalar(db, "SELECT count(*) FROM alerts") == 1
    assert scalar(db, "SELECT count(*) FROM outbox") == 1
    assert len(receiver.bodies()) == 1
