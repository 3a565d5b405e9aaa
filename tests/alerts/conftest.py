"""Fixtures of the alerts tests: a store over this test's database with a settable clock."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from alerts.settings import AlertsSettings
from alerts.store import AlertStore
from tests.alerts.support import Clock, subjects


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> AlertStore:
    return AlertStore(AlertsSettings(), subjects(), clock)


def rows(conn: psycopg.Connection[Any], sql: str, *params: Any) -> list[tuple[Any, ...]]:
    return conn.execute(sql, params).fetchall()
