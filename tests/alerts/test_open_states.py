"""The SQL spelling of "open" and the one-open-alert index agree with OPEN_STATES."""

from __future__ import annotations

import re
from typing import Any

import psycopg

from alerts.lifecycle import OPEN_STATES
from alerts.transitions import OPEN_SQL


def _states(sql: str) -> set[str]:
    return set(re.findall(r"'([a-z_]+)'", sql))


def test_open_sql_lists_the_open_states() -> None:
    assert OPEN_SQL.startswith("state IN (")
    assert _states(OPEN_SQL) == {s.value for s in OPEN_STATES}


def test_the_one_open_alert_index_has_the_same_predicate(db: psycopg.Connection[Any]) -> None:
    # ON CONFLICT (subject_key) WHERE <OPEN_SQL> only infers the index when both agree.
    row = db.execute("SELECT pg_get_indexdef('alerts_one_open'::regclass)").fetchone()
    assert row is not None
    predicate = row[0].split(" WHERE ", 1)[1]
    assert _states(predicate) == {s.value for s in OPEN_STATES}
