"""Fixtures of the ingest tests: the API app over this test's database, broker reported down."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool

from api.app import create_app
from api.context import ApiContext


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    pool = ConnectionPool(db_url, min_size=1, max_size=4, open=True)
    ctx = ApiContext(pool, CollectorRegistry(), lambda: {"database": True, "broker": False})
    with TestClient(create_app(ctx)) as c:
        yield c
    pool.close()
