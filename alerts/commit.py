"""The end of every alerts transaction: stream events, outbox rows, then the audit records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from alerts import audit, events
from alerts.records import Changes
from alerts.routing import Router


def finish(conn: psycopg.Connection[Any], changes: Changes, router: Router, now: datetime) -> int:
    """Write what `changes` collected; returns the notifications pending delivery."""
    events.write(conn, changes.events)
    pending = router.enqueue(conn, changes.notify, now)
    # Last: the audit append takes the chain's lock (see audit.append).
    audit.append(conn, changes.audit, now)
    return pending
