"""The directory cache follows bindings, links and edits: in-process, by NOTIFY and by time."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool

from core.principal import Principal, Role
from subjects.credit_code import make
from subjects.directory import SubjectDirectory
from subjects.metrics import SubjectsMetrics
from subjects.models import CreditGrade
from subjects.repository import SubjectConflictError
from subjects.schema import BindingIn, LinkIn, SubjectIn, SubjectPatch
from subjects.service import SubjectsService
from tests.helpers import wait_until

A = make("9", "1", "330100", "71610585")
B = make("9", "1", "330106", "MA2H3K4L")
EEB = Principal("test", "EEB", Role.PLATFORM_ADMIN)
HLT = Principal("test", "HLT")


def cross_codes(db: psycopg.Connection[Any]) -> set[str]:
    return {r[0] for r in db.execute("SELECT credit_code FROM cross_department_subjects")}


def test_binding_changes_reach_the_cache_at_once(service: SubjectsService) -> None:
    repo, directory = service.repository, service.directory
    repo.create(SubjectIn(credit_code=A, name="a", grid="G1", credit_grade=CreditGrade.C), EEB)
    repo.create(SubjectIn(credit_code=B, name="b", attributes={"permit.cod_mg_l": 50}), EEB)
    assert directory.context("dev-1") is None
    repo.bind("dev-1", BindingIn(credit_code=A, role="stack"), EEB)
    ctx = directory.context("dev-1")
    assert ctx is not None
    assert (ctx.credit_code, ctx.role, ctx.grid, ctx.credit_grade) == (A, "stack", "G1", "C")
    assert ctx.departments == {"EEB"}

    repo.bind("dev-1", BindingIn(credit_code=B, role="wastewater_outlet"), EEB)  # moved
    ctx = directory.context("dev-1")
    assert ctx is not None
    assert (ctx.credit_code, ctx.role) == (B, "wastewater_outlet")
    assert ctx.attributes == {"permit.cod_mg_l": 50.0}
    assert directory.devices_of(A) == ()
    assert [c.device_id for c in directory.devices_of(B)] == ["dev-1"]

    repo.update(B, SubjectPatch(credit_grade=CreditGrade.D), EEB)
    ctx = directory.context("dev-1")
    assert ctx is not None
    assert ctx.credit_grade is CreditGrade.D

    repo.link(B, LinkIn(department="HLT"), EEB)
    ctx = directory.context("dev-1")
    assert ctx is not None
    assert ctx.departments == {"EEB", "HLT"}
    assert [s.credit_code for s in directory.subjects_of("HLT")] == [B]

    repo.unbind("dev-1", EEB)
    assert directory.context("dev-1") is None
    repo.bind("dev-2", BindingIn(credit_code=A, role="camera"), EEB)
    repo.delete(A, EEB)
    assert directory.context("dev-2") is None
    assert directory.subject(A) is None


def test_cross_department_set_follows_links(
    service: SubjectsService, db: psycopg.Connection[Any]
) -> None:
    repo, directory = service.repository, service.directory
    repo.create(SubjectIn(credit_code=A, name="a"), EEB)
    repo.create(SubjectIn(credit_code=B, name="b"), EEB)
    assert cross_codes(db) == set()
    repo.link(A, LinkIn(department="HLT"), EEB)
    assert cross_codes(db) == {A}
    assert directory.is_cross_department(A)
    assert not directory.is_cross_department(B)
    repo.link(B, LinkIn(department="AMR"), EEB)
    assert cross_codes(db) == {A, B}
    repo.end_link(A, "HLT", HLT)
    assert cross_codes(db) == {B}
    assert not directory.is_cross_department(A)
    assert service.metrics.cross_department._value.get() == 1


def test_periods_starting_and_ending_update_the_set_without_a_write(
    service: SubjectsService, db: psycopg.Connection[Any]
) -> None:
    repo, directory = service.repository, service.directory
    repo.create(SubjectIn(credit_code=A, name="a"), EEB)
    # HLT supervises for a short period starting a moment from now.
    db.execute(
        "INSERT INTO subject_departments (credit_code, department, since, until)"
        " VALUES (%s, 'HLT', now() + interval '1 second', now() + interval '2.5 seconds')",
        (A,),
    )
    directory.refresh()
    assert cross_codes(db) == set()
    assert not directory.is_cross_department(A)
    wait_until(lambda: directory.is_cross_department(A), timeout=5, what="period start")
    assert cross_codes(db) == {A}
    wait_until(lambda: not directory.is_cross_department(A), timeout=5, what="period end")
    assert cross_codes(db) == set()


def test_explicit_refresh_sees_writes_made_elsewhere(
    service: SubjectsService, db: psycopg.Connection[Any]
) -> None:
    service.repository.create(SubjectIn(credit_code=A, name="a"), EEB)
    db.execute(
        "INSERT INTO device_bindings (device_id, credit_code, role) VALUES ('x-1', %s, 'tank')",
        (A,),
    )
    assert service.directory.context("x-1") is None  # not told yet
    before = service.directory.version
    service.directory.refresh()
    ctx = service.directory.context("x-1")
    assert ctx is not None
    assert ctx.role == "tank"
    assert service.directory.version > before


@pytest.fixture
def listening(pool: ConnectionPool) -> Iterator[SubjectDirectory]:
    d = SubjectDirectory(pool, SubjectsMetrics(CollectorRegistry()), listen=True)
    d.start()
    try:
        yield d
    finally:
        d.stop()


def test_another_instance_learns_of_changes_by_notify(
    listening: SubjectDirectory, service: SubjectsService, db: psycopg.Connection[Any]
) -> None:
    changed: list[int] = []
    listening.add_listener(lambda: changed.append(listening.version))
    service.repository.create(SubjectIn(credit_code=A, name="a"), EEB)
    service.repository.bind("n-1", BindingIn(credit_code=A, role="gas_detector"), EEB)
    ctx = wait_until(lambda: listening.context("n-1"), timeout=10, what="NOTIFY of the binding")
    assert ctx.role == "gas_detector"
    db.execute("UPDATE device_bindings SET role = 'tank' WHERE device_id = 'n-1'")
    wait_until(
        lambda: (c := listening.context("n-1")) is not None and c.role == "tank",
        timeout=10,
        what="NOTIFY of a direct update",
    )
    db.execute("DELETE FROM subjects WHERE credit_code = %s", (A,))
    wait_until(lambda: listening.context("n-1") is None, timeout=10, what="NOTIFY of delete")
    assert changed


def test_concurrent_links_and_creates_leave_one_row(
    service: SubjectsService, db: psycopg.Connection[Any]
) -> None:
    repo = service.repository
    results: list[str] = []

    def attempt(fn: Callable[[], object]) -> None:
        try:
            fn()
            results.append("ok")
        except SubjectConflictError:
            results.append("conflict")

    def race(fn: Callable[[], object], n: int = 4) -> list[str]:
        results.clear()
        threads = [threading.Thread(target=attempt, args=(fn,)) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return sorted(results)

    assert race(lambda: repo.create(SubjectIn(credit_code=A, name="a"), EEB)) == [
        "conflict",
        "conflict",
        "conflict",
        "ok",
    ]
    assert race(lambda: repo.link(A, LinkIn(department="HLT"), EEB)) == [
        "conflict",
        "conflict",
        "conflict",
        "ok",
    ]
    row = db.execute(
        "SELECT count(*) FROM subject_departments WHERE credit_code = %s AND department = 'HLT'",
        (A,),
    ).fetchone()
    assert row == (1,)
