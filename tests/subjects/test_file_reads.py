"""What the subject file reads from the library: the platform admin's view of a subject it
bound a device to, credit grade history from every source, coordinates, one clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool
from pydantic import ValidationError

from core.principal import Principal, Role
from subjects.credit_code import make
from subjects.errors import SubjectNotFoundError
from subjects.history import CreditSource
from subjects.importer import ImportFormat
from subjects.models import CreditGrade, EnvColour
from subjects.schema import SubjectIn, SubjectPatch
from subjects.service import SubjectsService
from subjects.settings import SubjectsSettings

Key = Callable[..., dict[str, str]]
PLANT = make("9", "1", "330100", "71610585")
EEB = Principal("张伟 (zhangwei)", "EEB")
PLATFORM = Principal("陈静 (chenjing)", "BDB", Role.PLATFORM_ADMIN)


def test_platform_admin_opens_the_file_of_a_subject_it_bound_a_device_to(
    client: TestClient, key: Key
) -> None:
    eeb, platform = key("EEB"), key("BDB", "platform_admin")
    assert (
        client.post(
            "/api/v1/subjects", json={"credit_code": PLANT, "name": "p"}, headers=eeb
        ).status_code
        == 201
    )
    r = client.put(
        "/api/v1/devices/gas-9/binding",
        json={"credit_code": PLANT, "role": "gas_detector"},
        headers=platform,
    )
    assert r.status_code == 200, r.text
    # BDB supervises nothing: before the fix these answered 404 (department, not platform).
    r = client.get(f"/api/v1/subjects/{PLANT}/devices", headers=platform)
    assert r.status_code == 200, r.text
    assert [d["device_id"] for d in r.json()] == ["gas-9"]
    assert client.get(f"/api/v1/subjects/{PLANT}", headers=platform).status_code == 200
    assert client.get(f"/api/v1/subjects/{PLANT}/departments", headers=platform).status_code == 200
    # Everyone else is still scoped by department.
    assert client.get(f"/api/v1/subjects/{PLANT}/devices", headers=key("AMR")).status_code == 404
    assert client.get(f"/api/v1/subjects/{PLANT}/devices", headers=eeb).status_code == 200


def test_bindings_of_is_one_query(
    service: SubjectsService, db: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = service.repository
    repo.create(SubjectIn(credit_code=PLANT, name="p"), EEB)
    for i in range(5):
        db.execute(
            "INSERT INTO device_bindings (device_id, credit_code, role) VALUES (%s, %s, 'tank')",
            (f"t-{i}", PLANT),
        )
    # Every statement reaches the server through Cursor.execute (Connection.execute too).
    statements: list[str] = []
    original = psycopg.Cursor.execute

    def counting(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        statements.append(str(query))
        return original(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", counting)
    found = repo.bindings_of(PLANT, EEB)
    monkeypatch.undo()
    assert [b.device_id for b in found] == [f"t-{i}" for i in range(5)]
    assert len(statements) == 1, statements  # was 2 + one per device


def test_credit_history_from_create_edit_and_import(service: SubjectsService) -> None:
    repo = service.repository
    repo.create(SubjectIn(credit_code=PLANT, name="p", credit_grade="B"), EEB)
    repo.update(PLANT, SubjectPatch(name="renamed"), EEB)  # no grade change: no entry
    repo.update(PLANT, SubjectPatch(credit_grade="黄"), EEB)  # a grade of the other scheme
    csv = f"credit_code,name,credit_grade\n{PLANT},renamed,A\n".encode()
    report = service.importer.run(csv, ImportFormat.CSV, EEB, dry_run=False)
    assert report.committed, report.errors
    history = repo.credit_history(PLANT, EEB)
    assert [(h.credit_grade, h.previous_grade, h.source) for h in history] == [
        (CreditGrade.A, EnvColour.YELLOW, CreditSource.IMPORT),
        (EnvColour.YELLOW, CreditGrade.B, CreditSource.EDIT),
        (CreditGrade.B, None, CreditSource.CREATE),
    ]
    assert {h.changed_by for h in history} == {"张伟 (zhangwei)"}
    assert history[1].credit_scheme.value == "jiangsu_env"
    # The current grade stays on the subject; another department sees no history.
    assert repo.get(PLANT, EEB).credit_grade is CreditGrade.A
    with pytest.raises(SubjectNotFoundError):
        repo.credit_history(PLANT, Principal("x", "AMR"))


def test_coordinates_both_or_neither_and_in_range(service: SubjectsService) -> None:
    repo = service.repository
    repo.create(SubjectIn(credit_code=PLANT, name="p"), EEB)
    out = repo.update(PLANT, SubjectPatch(latitude=31.3, longitude=120.7), EEB)
    assert (out.latitude, out.longitude) == (31.3, 120.7)
    for bad in (
        {"latitude": 31.3},
        {"latitude": 91, "longitude": 0},
        {"latitude": 0, "longitude": 181},
    ):
        with pytest.raises(ValidationError):
            SubjectPatch.model_validate(bad)


def test_one_injected_clock_stamps_the_command(pool: ConnectionPool) -> None:
    at = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    svc = SubjectsService(SubjectsSettings(listen=False), pool, CollectorRegistry())
    svc.repository.clock = lambda: at
    repo = svc.repository
    repo.create(SubjectIn(credit_code=PLANT, name="p"), EEB)
    out = repo.update(PLANT, SubjectPatch(grid="G-1"), EEB)
    assert out.updated_at == at
    assert repo.links(PLANT, EEB)[0].since == at
    assert repo.credit_history(PLANT, EEB)[0].changed_at == at


def test_department_bindings_are_scoped_paged_and_whole_for_the_platform(
    service: SubjectsService, db: psycopg.Connection[Any]
) -> None:
    repo = service.repository
    other = make("9", "1", "330100", "71610593")
    repo.create(SubjectIn(credit_code=PLANT, name="p"), EEB)
    repo.create(SubjectIn(credit_code=other, name="o"), Principal("赵强 (zhaoqiang)", "AMR"))
    for i in range(5):
        db.execute(
            "INSERT INTO device_bindings (device_id, credit_code, role) VALUES (%s, %s, 'tank')",
            (f"t-{i}", PLANT),
        )
    db.execute(
        "INSERT INTO device_bindings (device_id, credit_code, role) VALUES ('amr-1', %s, 'camera')",
        (other,),
    )
    total, page = repo.department_bindings(EEB, limit=2, offset=2)
    assert total == 5  # AMR's device is not EEB's
    assert [b.device_id for b in page] == ["t-2", "t-3"]
    assert page[0].subject_name == "p"
    total, every = repo.department_bindings(PLATFORM, limit=100)
    assert total == 6
    assert "amr-1" in {b.device_id for b in every}
    assert repo.department_bindings(Principal("x", "HLT"))[0] == 0


def test_the_platform_admin_searches_the_whole_library(service: SubjectsService) -> None:
    from subjects.search import SubjectQuery

    repo = service.repository
    repo.create(SubjectIn(credit_code=PLANT, name="某化工"), EEB)
    assert [s.credit_code for s in repo.search(SubjectQuery(q="化工"), PLATFORM).items] == [PLANT]
    assert repo.search(SubjectQuery(), Principal("x", "AMR")).total == 0  # departments stay scoped
