"""Fixtures of the alerts tests: a store over this test's database with a settable clock."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool

from alerts.service import AlertService
from alerts.settings import AlertsSettings
from alerts.store import AlertStore
from api.app import create_app
from api.auth import create_key
from api.context import ApiContext
from tests.alerts.support import Clock, subjects


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> AlertStore:
    return AlertStore(AlertsSettings(), subjects(), clock)


def rows(conn: psycopg.Connection[Any], sql: str, *params: Any) -> list[tuple[Any, ...]]:
    return conn.execute(sql, params).fetchall()


@dataclass
class Api:
    """A TestClient over the real app, an AlertService on the test database, and keys."""

    client: TestClient
    service: AlertService
    keys: dict[str, str]
    clock: Clock

    def as_(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}


@pytest.fixture
def api_factory(db_url: str, db: psycopg.Connection[Any], clock: Clock) -> Iterator[Any]:
    made: list[tuple[ConnectionPool, TestClient]] = []

    def build(settings: AlertsSettings | None = None, **notifiers: Any) -> Api:
        pool = ConnectionPool(db_url, min_size=1, max_size=6, open=True)
        registry = CollectorRegistry()
        ctx = ApiContext(pool, registry, lambda: {"database": True})
        service = AlertService(
            settings or AlertsSettings(), pool, registry, subjects(), notifiers or None, clock
        )
        ctx.provide(AlertService, service)
        keys = {
            f"{dept}-{role}": create_key(db, dept, role)
            for dept in ("EEB", "EMB", "AMR")
            for role in ("viewer", "officer")
        }
        client = TestClient(create_app(ctx))
        made.append((pool, client))
        return Api(client, service, keys, clock)

    yield build
    for pool, client in made:
        client.close()
        pool.close()


@pytest.fixture
def api(api_factory: Any) -> Api:
    built: Api = api_factory()
    return built
