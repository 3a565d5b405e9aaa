"""Credit schemes: A-D and Jiangsu's five colours, over the API and CSV import, validated."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from subjects.credit import parse_grade, scheme_of
from subjects.credit_code import make
from subjects.models import CreditGrade, CreditScheme, EnvColour

Key = Callable[..., dict[str, str]]

PLANT = make("9", "1", "320900", "71610585")
DYEWORKS = make("9", "1", "320902", "MA2H3K4L")
CSV = "text/csv; charset=utf-8"


@pytest.mark.parametrize(
    ("text", "grade"),
    [
        ("绿", EnvColour.GREEN),
        ("绿色", EnvColour.GREEN),
        ("Blue", EnvColour.BLUE),
        ("黄色", EnvColour.YELLOW),
        ("红", EnvColour.RED),
        ("black", EnvColour.BLACK),
        ("a", CreditGrade.A),
        ("D级", CreditGrade.D),
    ],
)
def test_spellings_map_to_their_grade_and_scheme(text: str, grade: object) -> None:
    parsed = parse_grade(text)
    assert parsed is grade
    expected = CreditScheme.ABCD if isinstance(grade, CreditGrade) else CreditScheme.JIANGSU_ENV
    assert scheme_of(parsed) is expected


def test_five_colour_subject_over_the_api(client: TestClient, key: Key) -> None:
    eeb = key("EEB")
    r = client.post(
        "/api/v1/subjects", json={"credit_code": PLANT, "name": "某化工", "credit_grade": "黄色"},
        headers=eeb,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    assert (r.json()["credit_scheme"], r.json()["credit_grade"]) == ("jiangsu_env", "yellow")

    # A grade of the other scheme brings its scheme with it.
    r = client.patch(f"/api/v1/subjects/{PLANT}", json={"credit_grade": "B"}, headers=eeb)
    assert r.status_code == 200, r.text
    assert (r.json()["credit_scheme"], r.json()["credit_grade"]) == ("abcd", "B")

    # A scheme and a grade that does not belong to it: refused, naming credit_grade.
    r = client.patch(
        f"/api/v1/subjects/{PLANT}",
        json={"credit_scheme": "jiangsu_env", "credit_grade": "A"},
        headers=eeb,
    )
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert ["body", "credit_grade"] in [e["loc"] for e in detail]
    assert "not a grade of credit scheme jiangsu_env" in str(detail)

    r = client.patch(f"/api/v1/subjects/{PLANT}", json={"credit_grade": "紫"}, headers=eeb)
    assert r.status_code == 422
    assert "绿色" in str(r.json()["detail"])

    r = client.get("/api/v1/subjects", params={"grade": "B"}, headers=eeb)
    assert [s["credit_code"] for s in r.json()["items"]] == [PLANT]
    r = client.get("/api/v1/subjects", params={"grade": "yellow"}, headers=eeb)
    assert r.json()["items"] == []


def test_csv_import_takes_scheme_and_five_colour_grades(
    client: TestClient, key: Key, db: psycopg.Connection[Any]
) -> None:
    text = (
        "统一社会信用代码,名称,信用评价体系,环保信用等级\n"
        f"{PLANT},某化工,jiangsu_env,红色\n"
        f"{DYEWORKS},某印染,,绿\n"
    )
    r = client.post(
        "/api/v1/subjects/import",
        content=text.encode(),
        headers={**key("EEB"), "Content-Type": CSV},
    )
    assert r.status_code == 200, r.text
    rows = db.execute(
        "SELECT credit_code, credit_scheme, credit_grade FROM subjects ORDER BY credit_code"
    ).fetchall()
    assert sorted(rows) == sorted(
        [(PLANT, "jiangsu_env", "red"), (DYEWORKS, "jiangsu_env", "green")]
    )


def test_csv_import_names_the_field_of_a_grade_outside_its_scheme(
    client: TestClient, key: Key, db: psycopg.Connection[Any]
) -> None:
    text = f"credit_code,name,credit_scheme,credit_grade\n{PLANT},某化工,abcd,绿\n"
    r = client.post(
        "/api/v1/subjects/import",
        content=text.encode(),
        headers={**key("EEB"), "Content-Type": CSV},
    )
    assert r.status_code == 422
    errors = r.json()["report"]["errors"]
    assert [(e["row"], e["column"]) for e in errors] == [(1, "credit_grade")]
    assert "not a grade of credit scheme abcd" in errors[0]["reason"]
    row = db.execute("SELECT count(*) FROM subjects").fetchone()
    assert row is not None
    assert row[0] == 0


def test_the_database_refuses_a_grade_outside_its_scheme(db: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute(
            "INSERT INTO subjects (credit_code, name, credit_scheme, credit_grade)"
            " VALUES (%s, 'x', 'abcd', 'green')",
            (PLANT,),
        )
