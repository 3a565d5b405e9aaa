"""Notifications: outbox routing, silences, rate caps, repeats, signed webhooks, Apprise, dead."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool

from alerts import silences
from alerts.lifecycle import Action, DismissReason
from alerts.notify.webhook import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify_signature,
)
from alerts.outbox import backoff_s
from alerts.service import AlertService
from alerts.settings import AlertsSettings, NotificationRoute
from alerts.silences import Matcher
from alerts.store import AlertStore
from core.principal import Principal
from rules.models import Severity
from tests.alerts.support import CHEM, PLANT, SHOP, Clock, Receiver, clue, free_port, subjects
from tests.helpers import wait_until

EEB = Principal("key 1", "EEB")
SECRET = "s3cret-for-tests"


def hook(name: str = "eeb", url: str = "http://127.0.0.1:9/", **kw: Any) -> NotificationRoute:
    return NotificationRoute(name=name, kind="webhook", url=url, secret=SECRET, **kw)


def outbox(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT route, event, status, suppressed_by, subject_key FROM outbox ORDER BY id"
    ).fetchall()


def make_store(clock: Clock, **settings: Any) -> AlertStore:
    return AlertStore(AlertsSettings(**settings), subjects(), clock)


def test_routing_by_department_and_severity(db: psycopg.Connection[Any], clock: Clock) -> None:
    routes = [
        hook("eeb", department="EEB"),
        hook("emb-major", department="EMB", min_severity=Severity.MAJOR),
        hook("city", min_severity=Severity.CRITICAL),
    ]
    store = make_store(clock, routes=routes)
    store.apply_clue(db, clue(PLANT, "EEB", Severity.WARNING))
    store.apply_clue(db, clue(CHEM, "EMB", Severity.WARNING, rule_id="r-lel"))
    store.apply_clue(db, clue(CHEM, "EMB", Severity.CRITICAL, rule_id="r-lel2"))
    assert outbox(db) == [
        ("eeb", "opened", "pending", None, PLANT),
        # CHEM opened at warning: below both EMB's and the city's minimum ...
        # ... then escalated to critical: both carry it.
        ("emb-major", "escalated", "pending", None, CHEM),
        ("city", "escalated", "pending", None, CHEM),
    ]


def test_silence_suppresses_the_notification_but_the_alert_is_recorded(
    db: psycopg.Connection[Any], clock: Clock
) -> None:
    store = make_store(clock, routes=[hook("eeb", department="EEB"), hook("emb", department="EMB")])
    silence = silences.create(
        db,
        EEB,
        Matcher.SUBJECT,
        CHEM,
        clock.now,
        clock.now + timedelta(hours=1),
        "maintenance",
        clock(),
    )
    out = store.apply_clue(db, clue(CHEM, "EEB"))
    store.apply_clue(db, clue(CHEM, "EMB", rule_id="r-lel"))
    assert out.alert is not None
    assert db.execute("SELECT state FROM alerts WHERE id = %s", (out.alert.id,)).fetchone() == (
        "open",
    )
    assert db.execute("SELECT count(*) FROM alert_clues").fetchone() == (2,)
    # EEB's silence mutes EEB's route only; EMB is still told.
    rows = outbox(db)
    assert ("eeb", "opened", "suppressed", f"silence:{silence.id}", CHEM) in rows
    assert all(r[0] != "emb" or r[2] == "pending" for r in rows)
    # After it ends, notifications flow again.
    clock.advance(3601)
    store.apply_clue(db, clue(PLANT, "EEB"))
    assert outbox(db)[-1] == ("eeb", "opened", "pending", None, PLANT)


def test_rule_silence_mutes_only_when_it_covers_every_clue(
    db: psycopg.Connection[Any], clock: Clock
) -> None:
    store = make_store(clock, routes=[hook("eeb", department="EEB")])
    silences.create(db, EEB, Matcher.RULE, "r-noisy", clock.now,
                    clock.now + timedelta(hours=1), "known sensor drift", clock())  # fmt: skip
    silences.create(db, EEB, Matcher.DEVICE, "cam-7", clock.now,
                    clock.now + timedelta(hours=1), "camera being moved", clock())  # fmt: skip
    store.apply_clue(db, clue(PLANT, "EEB", rule_id="r-noisy"))
    store.apply_clue(db, clue(SHOP, "EEB", rule_id="r-x", device="cam-7"))
    store.apply_clue(db, clue(CHEM, "EEB", rule_id="r-noisy"))
    store.apply_clue(db, clue(CHEM, "EEB", Severity.MAJOR, rule_id="r-real"))
    rows = outbox(db)
    assert rows[0][2:4] == ("suppressed", rows[0][3])
    assert rows[0][3].startswith("silence:")
    assert rows[1][2] == "suppressed"
    # CHEM's escalation comes from a rule nobody silenced: it is sent.
    assert rows[-1][:3] == ("eeb", "escalated", "pending")


def test_rate_cap_per_subject(db: psycopg.Connection[Any], clock: Clock) -> None:
    store = make_store(clock, routes=[hook("eeb")], rate_cap_count=2, rate_cap_window_s=600)
    for n, severity in enumerate([Severity.INFO, Severity.WARNING, Severity.MAJOR,
                                  Severity.CRITICAL]):  # fmt: skip
        store.apply_clue(db, clue(PLANT, "EEB", severity, rule_id=f"r{n}"))
    statuses = [(r[1], r[2], r[3]) for r in outbox(db)]
    assert statuses == [
        ("escalated", "pending", None),  # opened at info was below the route's minimum
        ("escalated", "pending", None),
        ("escalated", "suppressed", "rate_cap"),
    ]
    assert db.execute("SELECT severity FROM alerts").fetchone() == ("critical",)
    clock.advance(601)
    store.apply_clue(db, clue(SHOP, "EEB", Severity.MAJOR))
    store.apply_clue(db, clue(SHOP, "EEB", Severity.CRITICAL, rule_id="r9"))
    assert [r[2] for r in outbox(db)][-2:] == ["pending", "pending"]


def test_repeat_interval_and_resolved_notices(db: psycopg.Connection[Any], clock: Clock) -> None:
    store = make_store(
        clock,
        repeat_interval_s=600,
        routes=[hook("eeb"), hook("quiet", send_resolved=False, send_repeats=False)],
    )
    a = store.apply_clue(db, clue(PLANT, "EEB")).alert
    b = store.apply_clue(db, clue(CHEM, "EEB")).alert
    assert a is not None
    assert b is not None
    store.transition(db, b.id, Action.ACKNOWLEDGE, EEB)
    clock.advance(599)
    assert store.repeat_due(db) == 0
    clock.advance(2)
    assert store.repeat_due(db) == 1  # the acknowledged alert does not repeat
    clock.advance(10)
    assert store.repeat_due(db) == 0  # not again until another interval
    store.transition(db, a.id, Action.RESOLVE, EEB)
    events = [(r[0], r[1], r[4]) for r in outbox(db)]
    assert events == [
        ("eeb", "opened", PLANT),
        ("quiet", "opened", PLANT),
        ("eeb", "opened", CHEM),
        ("quiet", "opened", CHEM),
        ("eeb", "repeat", PLANT),
        ("eeb", "resolved", PLANT),
    ]


def test_backoff_doubles_and_caps() -> None:
    assert [backoff_s(n, 2.0, 20.0) for n in range(1, 6)] == [2.0, 4.0, 8.0, 16.0, 20.0]


@pytest.fixture
def pool(db_url: str) -> Iterator[ConnectionPool]:
    p = ConnectionPool(db_url, min_size=1, max_size=4, open=True)
    yield p
    p.close()


def started(pool: ConnectionPool, settings: AlertsSettings) -> AlertService:
    service = AlertService(settings, pool, CollectorRegistry(), subjects())
    service.start()
    return service


def test_receiver_down_for_a_while_gets_every_notification_signed(pool: ConnectionPool) -> None:
    port = free_port()
    receiver = Receiver(port)
    url = f"http://127.0.0.1:{port}/hook"
    settings = AlertsSettings(
        routes=[hook("eeb", url=url)],
        backoff_initial_s=0.05,
        backoff_max_s=0.3,
        max_attempts=1000,
        outbox_poll_s=0.05,
    )
    service = started(pool, settings)
    try:
        codes = [f"91320500MA1MQ{n:04d}X" for n in range(6)]
        for code in codes:
            service.clue_changed(clue(code, "EEB", Severity.MAJOR))
        assert service.drain()

        def failed_attempts() -> int:
            with pool.connection() as conn:
                row = conn.execute(
                    "SELECT count(*) FROM outbox WHERE status = 'pending' AND attempts >= 2"
                    " AND last_error LIKE 'webhook unreachable%'"
                ).fetchone()
            return int(row[0]) if row else 0

        wait_until(lambda: failed_attempts() == len(codes), 20, what="retries while down")
        time.sleep(0.5)
        receiver.start()
        wait_until(lambda: len(receiver.bodies()) >= len(codes), 20, what="deliveries")
        time.sleep(0.3)
    finally:
        service.stop()
        receiver.stop()
    got = receiver.bodies()
    assert len(got) == len(codes)  # every one, once
    assert sorted(r.json()["alert"]["subject_key"] for r in got) == sorted(codes)
    for r in got:
        ts, sig = r.header(TIMESTAMP_HEADER), r.header(SIGNATURE_HEADER)
        assert verify_signature(SECRET, ts, r.body, sig)
        assert not verify_signature("wrong", ts, r.body, sig)
        assert not verify_signature(SECRET, ts, r.body + b" ", sig)
        assert r.json()["event"] == "opened"
    with pool.connection() as conn:
        rows = conn.execute("SELECT id, status FROM outbox ORDER BY id").fetchall()
    assert {s for _, s in rows} == {"sent"}
    delivered_ids = sorted(int(r.header(DELIVERY_HEADER)) for r in got)
    assert delivered_ids == [i for i, _ in rows]


def test_failing_receiver_turns_dead_after_n_attempts(pool: ConnectionPool) -> None:
    receiver = Receiver(free_port(), status=500)
    receiver.start()
    registry = CollectorRegistry()
    settings = AlertsSettings(routes=[hook("eeb", url=receiver.url)], max_attempts=3,
                              backoff_initial_s=0.02, outbox_poll_s=0.05)  # fmt: skip
    service = AlertService(settings, pool, registry, subjects())
    service.start()
    try:
        service.clue_changed(clue(PLANT, "EEB", Severity.MAJOR))

        def dead() -> tuple[Any, ...] | None:
            with pool.connection() as conn:
                return conn.execute(
                    "SELECT status, attempts, last_error FROM outbox WHERE status = 'dead'"
                ).fetchone()

        row = wait_until(dead, 20, what="a dead notification")
    finally:
        service.stop()
        receiver.stop()
    assert row == ("dead", 3, "webhook answered HTTP 500")
    assert len(receiver.bodies()) == 3
    sample = registry.get_sample_value
    assert sample("offsite_alerts_notifications_total", {"channel": "eeb", "result": "dead"}) == 1
    assert sample("offsite_alerts_notifications_total", {"channel": "eeb", "result": "failed"}) == 2
    with pool.connection() as conn:
        service.refresh_gauges(conn)
    assert sample("offsite_alerts_outbox_depth", {"status": "dead"}) == 1


def test_apprise_json_url_delivers_to_a_local_receiver(pool: ConnectionPool) -> None:
    receiver = Receiver(free_port())
    receiver.start()
    route = NotificationRoute(name="im", kind="apprise", url=f"json://127.0.0.1:{receiver.port}/im")
    settings = AlertsSettings(routes=[route], outbox_poll_s=0.05)
    service = started(pool, settings)
    try:
        service.clue_changed(clue(CHEM, "EMB", Severity.CRITICAL, rule_id="gas-lel"))
        wait_until(receiver.bodies, 20, what="an Apprise JSON post")
    finally:
        service.stop()
        receiver.stop()
    (got,) = receiver.bodies()
    doc = got.json()
    assert got.path == "/im"
    assert doc["title"].startswith("[CRITICAL] alert")
    assert CHEM in doc["message"]
    assert "gas-lel breached" in doc["message"]


def test_notifications_are_written_with_the_state_change(
    db: psycopg.Connection[Any], clock: Clock
) -> None:
    """A transaction that fails leaves neither the alert nor its notification behind."""
    store = make_store(clock, routes=[hook("eeb")])
    # A clue id past bigint fails at the clue insert, after the alert row was written.
    broken = dataclasses.replace(clue(PLANT, "EEB", Severity.MAJOR), clue_id=2**70)
    with pytest.raises(psycopg.errors.NumericValueOutOfRange):
        store.apply_clue(db, broken)
    assert db.execute("SELECT count(*) FROM alerts").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM outbox").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM audit_log").fetchone() == (0,)


def test_a_closed_alert_escalating_notifies_no_one(
    db: psycopg.Connection[Any], clock: Clock
) -> None:
    store = make_store(clock, routes=[hook("eeb")])
    out = store.apply_clue(db, clue(PLANT, "EEB", Severity.WARNING, clue_id=41))
    assert out.alert is not None
    store.transition(db, out.alert.id, Action.DISMISS, EEB, DismissReason.PERMITTED_ACTIVITY)
    store.apply_clue(db, clue(PLANT, "EEB", Severity.CRITICAL, clue_id=41))
    assert db.execute("SELECT state, severity FROM alerts").fetchone() == ("dismissed", "critical")
    assert [r[1] for r in outbox(db)] == ["opened", "dismissed"]
