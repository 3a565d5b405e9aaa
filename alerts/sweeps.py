"""The service ticker's sweeps: resolve quiet alerts, repeat unanswered notices."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg

from alerts import transitions
from alerts.commit import finish
from alerts.lifecycle import Action, AlertState, decide
from alerts.outcome import Outcome
from alerts.records import Changes, NotifyEvent, NotifyRequest, fetch_alert, fetch_alerts
from alerts.routing import Router
from alerts.settings import AlertsSettings
from core.principal import SYSTEM


def auto_resolve_due(
    conn: psycopg.Connection[Any], settings: AlertsSettings, router: Router, now: datetime
) -> list[Outcome]:
    """Resolve open or acknowledged alerts whose clues are all resolved and quiet."""
    cutoff = now - timedelta(seconds=settings.quiet_period_s)
    ids = [
        r[0]
        for r in conn.execute(
            "SELECT id FROM alerts WHERE state IN ('open', 'acknowledged')"
            " AND clues_resolved_at IS NOT NULL AND clues_resolved_at <= %s ORDER BY id",
            (cutoff,),
        )
    ]
    outcomes = []
    for alert_id in ids:
        changes = Changes()
        with conn.transaction():
            alert = fetch_alert(conn, alert_id, lock=True)
            # Re-checked under the lock: a clue may have fired since the scan.
            if (
                alert is None
                or alert.state not in (AlertState.OPEN, AlertState.ACKNOWLEDGED)
                or alert.clues_resolved_at is None
                or alert.clues_resolved_at > cutoff
            ):
                continue
            t = decide(alert.state, alert.departments, Action.AUTO_RESOLVE, SYSTEM, now,
                       note="all clues resolved and quiet")  # fmt: skip
            new = transitions.apply(conn, alert, t, changes)
            pending = finish(conn, changes, router, now)
        outcomes.append(Outcome(new, pending, changes))
    return outcomes


def repeat_due(
    conn: psycopg.Connection[Any], settings: AlertsSettings, router: Router, now: datetime
) -> int:
    """Re-notify open, unacknowledged alerts not notified for a repeat interval."""
    if settings.repeat_interval_s <= 0:
        return 0
    cutoff = now - timedelta(seconds=settings.repeat_interval_s)
    pending = 0
    with conn.transaction():
        alerts = fetch_alerts(
            conn,
            "state = 'open' AND coalesce(last_notified_at, opened_at) <= %s ORDER BY id LIMIT 500",
            (cutoff,),
            lock=True,
        )
        if alerts:
            pending = router.enqueue(
                conn, [NotifyRequest(a, NotifyEvent.REPEAT) for a in alerts], now
            )
    return pending
