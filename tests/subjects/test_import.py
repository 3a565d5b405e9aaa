"""Bulk import: good files commit whole, a bad row rejects the file with row and column named."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import psycopg
from fastapi.testclient import TestClient

from subjects.credit_code import make
from subjects.service import SubjectsService
from tests.helpers import scalar
from tests.subjects.conftest import ChangeLog

Key = Callable[..., dict[str, str]]

A = make("9", "1", "330100", "71610585")
B = make("9", "1", "330106", "MA2H3K4L")
C = make("9", "2", "330110", "N2K3M4P5")
CSV = "text/csv; charset=utf-8"


def post(
    client: TestClient, body: str | bytes, headers: dict[str, str], ctype: str = CSV, **params: Any
) -> Any:
    data = body.encode() if isinstance(body, str) else body
    return client.post(
        "/api/v1/subjects/import",
        content=data,
        params=params,
        headers={**headers, "Content-Type": ctype},
    )


def count(db: psycopg.Connection[Any], table: str) -> int:
    return scalar(db, f"SELECT count(*) FROM {table}")


def test_csv_import_commits_every_row(
    client: TestClient,
    key: Key,
    db: psycopg.Connection[Any],
    changes: ChangeLog,
    service: SubjectsService,
) -> None:
    text = (
        "\ufeff统一社会信用代码,名称,grid,industry,信用等级,风险等级,tags,departments,attr.permit.cod_mg_l\n"
        f"{A},Riverside Chemical,XH-03,chemicals,c,较大,hazchem；key_polluter,EEB,50\n"
        f'{B},"Eastbank Dyeworks, Ltd.",XH-03,textiles,D,major,key_polluter,,\n'
        "\n"
        f"{C},Corner Print Shop,GS-01,printing,,,,EEB;,\n"
    )
    r = post(client, text, key("EEB"))
    assert r.status_code == 200, r.text
    report = r.json()["report"]
    assert report["committed"] is True
    assert (report["rows"], report["created"], report["links_added"]) == (3, 3, 3)
    assert report["errors"] == []
    got = client.get(f"/api/v1/subjects/{A}", headers=key("EEB")).json()
    assert got["credit_grade"] == "C"
    assert got["risk_level"] == "considerable"
    assert got["tags"] == ["hazchem", "key_polluter"]
    assert got["attributes"] == {"permit.cod_mg_l": 50.0}
    got = client.get(f"/api/v1/subjects/{C}", headers=key("EEB")).json()
    assert (got["credit_grade"], got["risk_level"], got["departments"]) == ("B", "general", ["EEB"])
    assert client.get(f"/api/v1/subjects/{B}", headers=key("EEB")).json()["name"] == (
        "Eastbank Dyeworks, Ltd."
    )
    assert changes.kinds().count("subject.created") == 3
    assert {c.source for c in changes.changes} == {"import"}
    assert service.directory.subject(A) is not None

    # The same file again changes nothing; a changed cell updates only that subject.
    r = post(client, text, key("EEB"))
    assert r.json()["report"]["unchanged"] == 3
    assert r.json()["report"]["links_added"] == 0
    r = post(client, text.replace("Corner Print Shop", "Corner Print Shop No.2"), key("EEB"))
    rep = r.json()["report"]
    assert (rep["updated"], rep["unchanged"]) == (1, 2)
    assert count(db, "subjects") == 3


def test_one_bad_file_imports_nothing_and_reports_every_bad_row(
    client: TestClient, key: Key, db: psycopg.Connection[Any], changes: ChangeLog
) -> None:
    bad_check = A[:-1] + ("X" if A[-1] != "X" else "Y")
    text = (
        "credit_code,name,credit_grade,departments,attr.limit\n"
        f"{A},Good One,A,EEB,1\n"  # row 1: fine
        f"{bad_check},Bad Check,B,EEB,\n"  # row 2: check character
        f"{B},,B,,\n"  # row 3: empty name
        f"{C},Wrong Grade,E,EEB,\n"  # row 4: grade
        f"{make('9', '1', '330100', '12345678')},Other dept,B,HLT,\n"  # row 5: officer, HLT
        f"{A},Duplicate,B,EEB,abc\n"  # row 6: duplicate code and a non-number
        "short,row\n"  # row 7: cell count
    )
    r = post(client, text, key("EEB"))
    assert r.status_code == 422
    assert "nothing was imported" in r.json()["detail"]
    report = r.json()["report"]
    assert report["committed"] is False
    found = {(e["row"], e["column"]) for e in report["errors"]}
    assert {
        (2, "credit_code"),
        (3, "name"),
        (4, "credit_grade"),
        (5, "departments"),
        (6, "attr.limit"),
        (7, "(row)"),
    } <= found
    reasons = {(e["row"], e["column"]): e["reason"] for e in report["errors"]}
    assert "position 18" in reasons[(2, "credit_code")]
    assert "HLT needs an admin" in reasons[(5, "departments")]
    codes = {(e["row"], e["column"]): (e["code"], e["params"]) for e in report["errors"]}
    assert codes[(2, "credit_code")][0] == "invalid_credit_code"
    assert codes[(3, "name")][0] == "required"
    assert codes[(4, "credit_grade")] == ("invalid_credit_grade", {"value": "E"})
    assert codes[(5, "departments")] == (
        "department_not_allowed",
        {"own": "EEB", "department": "HLT"},
    )
    assert codes[(6, "attr.limit")] == ("not_a_number", {"value": "abc"})
    assert codes[(7, "(row)")] == ("cell_count", {"cells": 2, "header": 5})
    assert [e["line"] for e in report["errors"] if e["row"] == 7] == [8]
    assert 1 not in {e["row"] for e in report["errors"]}
    assert count(db, "subjects") == 0
    assert count(db, "subject_departments") == 0
    assert changes.changes == []


def test_duplicate_code_is_reported_against_the_first_row(client: TestClient, key: Key) -> None:
    text = f"credit_code,name\n{A},one\n{A.lower()},two\n"
    report = post(client, text, key("EEB")).json()["report"]
    assert [(e["row"], e["column"]) for e in report["errors"]] == [(2, "credit_code")]
    assert "also on row 1" in report["errors"][0]["reason"]
    assert report["errors"][0]["code"] == "duplicate_row"
    assert report["errors"][0]["params"] == {"code": A, "row": 1}


def test_header_problems(client: TestClient, key: Key) -> None:
    r = post(client, f"name,colour\n{A},x\n", key("EEB"))
    assert r.status_code == 422
    errs = {(e["row"], e["column"]): e["reason"] for e in r.json()["report"]["errors"]}
    assert errs[(0, "colour")].startswith("unknown column")
    assert errs[(0, "credit_code")] == "column is missing"
    codes = {e["column"]: e["code"] for e in r.json()["report"]["errors"]}
    assert codes == {"colour": "unknown_column", "credit_code": "missing_column"}
    r = post(client, b"credit_code,name\n\xff\xfe", key("EEB"))
    assert "not UTF-8" in r.json()["detail"]
    r = post(client, "", key("EEB"))
    assert r.status_code == 422
    assert "no header" in r.json()["detail"]
    r = client.post(
        "/api/v1/subjects/import",
        content=b"x",
        headers={**key("EEB"), "Content-Type": "application/pdf"},
    )
    assert r.status_code == 415


def test_json_import_and_dry_run(client: TestClient, key: Key, db: psycopg.Connection[Any]) -> None:
    rows = [
        {
            "credit_code": A,
            "name": "Riverside",
            "tags": ["hazchem"],
            "departments": ["EEB", "HLT"],
            "attributes": {"permit.cod_mg_l": 50},
        },
        {"credit_code": B, "name": "Eastbank", "departments": "EEB;AMR", "credit_grade": "D"},
    ]
    body = orjson.dumps({"subjects": rows})
    admin = key("EEB", "admin")
    r = post(client, body, admin, "application/json", dry_run="true")
    assert r.status_code == 200, r.text
    rep = r.json()["report"]
    assert (rep["dry_run"], rep["committed"], rep["created"], rep["links_added"]) == (
        True,
        False,
        2,
        4,
    )
    assert count(db, "subjects") == 0

    # An officer may not import for other departments: the dry run says so, per row.
    r = post(client, body, key("EEB"), "application/json", dry_run="true")
    assert r.status_code == 422
    assert "would be rejected" in r.json()["detail"]
    assert {e["row"] for e in r.json()["report"]["errors"]} == {1, 2}

    r = post(client, body, admin, "application/json")
    assert r.status_code == 200
    assert r.json()["report"]["committed"] is True
    cross = client.get("/api/v1/subjects/cross-department", headers=key("HLT", "viewer")).json()
    assert [s["credit_code"] for s in cross["items"]] == [A]
    r = post(client, b'[{"credit_code": 5, "name": "x", "shoe": 1}, 7]', admin, "application/json")
    errs = {(e["row"], e["column"]) for e in r.json()["report"]["errors"]}
    assert errs == {(1, "shoe"), (2, "(row)")}
    r = post(client, b"{not json", admin, "application/json")
    assert r.status_code == 422
    assert "not valid JSON" in r.json()["detail"]


def test_import_needs_an_officer(client: TestClient, key: Key) -> None:
    r = post(client, f"credit_code,name\n{A},x\n", key("EEB", "viewer"))
    assert r.status_code == 403


def test_metrics_count_imports_and_library(
    client: TestClient, key: Key, service: SubjectsService
) -> None:
    registry = service.registry  # a fresh CollectorRegistry per test
    post(client, f"credit_code,name,credit_grade\n{A},a,D\n{B},b,D\n", key("EEB"))
    post(client, f"credit_code,name\n{C},c\n{C},c\n", key("EEB"))
    post(client, f"credit_code,name\n{C},c\n", key("EEB"), dry_run="true")

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("offsite_subjects_imports_total", result="committed") == 1
    assert value("offsite_subjects_imports_total", result="rejected") == 1
    assert value("offsite_subjects_imports_total", result="dry_run") == 1
    assert value("offsite_subjects_import_rows_total", result="created") == 2
    assert value("offsite_subjects_import_rows_total", result="invalid") == 1
    assert value("offsite_subjects_library_subjects", grade="D") == 2
    assert value("offsite_subjects_library_subjects", grade="A") == 0
    assert value("offsite_subjects_changes_total", kind="subject.created") == 2
