"""Alerts metrics: alerts by state and severity, time to acknowledge, tasks, outbox, events."""

from __future__ import annotations

from alerts.lifecycle import Action
from core.principal import Principal
from rules.models import Severity
from tests.alerts.conftest import Api
from tests.alerts.support import CHEM, PLANT, clue


def test_metrics_follow_the_alerts(api: Api) -> None:
    service = api.service
    registry_value = api.client.app.state.ctx.registry.get_sample_value  # type: ignore[attr-defined]
    service.start()
    try:
        service.clue_changed(clue(PLANT, "EEB", Severity.MAJOR))
        service.clue_changed(clue(CHEM, "EEB", Severity.WARNING))
        service.clue_changed(clue(CHEM, "EMB", Severity.CRITICAL, rule_id="r2"))
        assert service.drain()
    finally:
        service.stop()
    assert registry_value("offsite_alerts_clue_events_total", {"result": "applied"}) == 3
    with service.pool.connection() as conn:
        plant = conn.execute("SELECT id FROM alerts WHERE subject_key = %s", (PLANT,)).fetchone()
        chem = conn.execute("SELECT id FROM alerts WHERE subject_key = %s", (CHEM,)).fetchone()
    assert plant is not None
    assert chem is not None
    api.clock.advance(120)
    service.act(plant[0], Action.ACKNOWLEDGE, Principal("key 1", "EEB"))
    service.act(chem[0], Action.DISPATCH, Principal("key 2", "EMB"))
    assert registry_value("offsite_alerts_time_to_acknowledge_seconds_count") == 1
    assert registry_value("offsite_alerts_time_to_acknowledge_seconds_sum") == 120
    with service.pool.connection() as conn:
        service.refresh_gauges(conn)
    alerts = {"state": "acknowledged", "severity": "major"}
    assert registry_value("offsite_alerts_alerts", alerts) == 1
    assert (
        registry_value("offsite_alerts_alerts", {"state": "dispatched", "severity": "critical"})
        == 1
    )
    assert registry_value("offsite_alerts_alerts", {"state": "open", "severity": "major"}) == 0
    assert registry_value("offsite_alerts_tasks", {"kind": "joint", "status": "planned"}) == 1
    assert registry_value("offsite_alerts_tasks", {"kind": "remote", "status": "planned"}) == 0
    assert registry_value("offsite_alerts_outbox_depth", {"status": "pending"}) == 0
    text = api.client.get("/metrics").text
    assert "offsite_alerts_outbox_oldest_age_seconds 0.0" in text


def test_prune_keeps_dead_notifications_and_recent_rows(api: Api) -> None:
    from datetime import timedelta

    service = api.service
    with service.pool.connection() as conn:
        service.store.apply_clue(conn, clue(PLANT, "EEB", Severity.MAJOR))
        conn.execute(
            "INSERT INTO outbox (subject_key, route, event, payload, status, next_attempt_at,"
            " created_at) VALUES ('k', 'r', 'opened', '{}', 'sent', now(), %s),"
            " ('k', 'r', 'opened', '{}', 'dead', now(), %s)",
            (api.clock.now, api.clock.now),
        )
        conn.execute("UPDATE alert_events SET at = %s", (api.clock.now,))
        assert service.prune(conn) == (0, 0)
        api.clock.advance(timedelta(days=31).total_seconds())
        events, sent = service.prune(conn)
        assert events > 0
        assert sent == 1
        assert conn.execute("SELECT status FROM outbox").fetchall() == [("dead",)]
