"""Fixtures for rule tests that need the database: a pool and a service factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool

from ingest.models import Reading
from rules.models import ClueEvent
from rules.service import RuleService
from rules.settings import RulesSettings
from subjects.models import DeviceDirectory


class Recorder:
    """A ClueSink that keeps what it is handed."""

    def __init__(self) -> None:
        self.events: list[ClueEvent] = []

    def clue_changed(self, event: ClueEvent) -> None:
        self.events.append(event)


class Clock:
    """A wall clock the test moves."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def pool(db_url: str) -> Iterator[ConnectionPool]:
    p = ConnectionPool(db_url, min_size=1, max_size=6, open=True, name="rules-test")
    try:
        yield p
    finally:
        p.close()


def store_readings(conn: psycopg.Connection[Any], readings: Sequence[Reading]) -> None:
    """What the ingest writer does before it calls the sink: commit the readings."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO readings (time, device_id, metric, value, flag)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [(r.time, r.device_id, r.metric, r.value, r.flag) for r in readings],
        )
        cur.executemany(
            "INSERT INTO devices (device_id, first_seen, last_seen) VALUES (%s, %s, %s)"
            " ON CONFLICT (device_id) DO UPDATE SET last_seen ="
            " greatest(devices.last_seen, excluded.last_seen)",
            [(r.device_id, r.time, r.time) for r in readings],
        )


ServiceFactory = Callable[..., RuleService]


@pytest.fixture
def make_service(pool: ConnectionPool) -> Iterator[ServiceFactory]:
    started: list[RuleService] = []

    def build(
        rules_dir: Path,
        directory: DeviceDirectory,
        clock: Callable[[], float],
        sinks: Sequence[Any] = (),
        **settings: Any,
    ) -> RuleService:
        svc = RuleService(
            RulesSettings(directory=rules_dir, **settings),
            pool,
            CollectorRegistry(),
            directory,
            sinks=sinks,
            clock=clock,
        )
        svc.start()
        started.append(svc)
        return svc

    yield build
    for svc in started:
        svc.stop()
