"""Fixtures of the subject library tests: a real pool, the service, the app and keys."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool

from api.app import create_app
from api.auth import create_key
from api.context import ApiContext
from subjects.directory import SubjectDirectory
from subjects.models import SubjectChanged
from subjects.service import SubjectsService
from subjects.settings import SubjectsSettings


@pytest.fixture
def pool(db_url: str) -> Iterator[ConnectionPool]:
    p = ConnectionPool(db_url, min_size=1, max_size=4, open=True)
    try:
        yield p
    finally:
        p.close()


class ChangeLog:
    """Collects SubjectChanged messages from inside the writing transaction."""

    def __init__(self) -> None:
        self.changes: list[SubjectChanged] = []

    def __call__(self, change: SubjectChanged, conn: psycopg.Connection[Any]) -> None:
        # Proves the hook runs inside the edit's transaction, as the audit chain needs.
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        self.changes.append(change)

    def kinds(self) -> list[str]:
        return [c.kind.value for c in self.changes]


@pytest.fixture
def changes() -> ChangeLog:
    return ChangeLog()


@pytest.fixture
def service(pool: ConnectionPool, changes: ChangeLog) -> Iterator[SubjectsService]:
    svc = SubjectsService(
        SubjectsSettings(listen=False), pool, CollectorRegistry(), on_change=changes
    )
    svc.start()
    try:
        yield svc
    finally:
        svc.stop()


@pytest.fixture
def client(pool: ConnectionPool, service: SubjectsService) -> Iterator[TestClient]:
    ctx = ApiContext(pool, CollectorRegistry(), lambda: {"database": True})
    ctx.provide(SubjectsService, service)
    ctx.provide(SubjectDirectory, service.directory)
    with TestClient(create_app(ctx)) as c:
        yield c


@pytest.fixture
def key(db: psycopg.Connection[Any]) -> Callable[[str, str], dict[str, str]]:
    """Headers with a real API key of `department` and `role`."""

    def make(department: str, role: str = "officer") -> dict[str, str]:
        return {"Authorization": f"Bearer {create_key(db, department, role)}"}

    return make
