"""The department list as the plan names it; a retired code keeps its history, takes no links."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from subjects.credit_code import make
from subjects.departments import seed_departments

Key = Callable[..., dict[str, str]]
PLANT = make("9", "1", "320900", "71610585")

# The plan's exact wording (seed/cross-department-supervision-plan.zh.md).
PLAN_NAMES = {
    "EEB": "市生态环境局",
    "EMB": "市应急局",
    "AMR": "市市场监管局",
    "AGR": "市农业农村局",
    "HLT": "市卫健委",
    "TRN": "市交通局",
    "EDU": "市教育局",
    "HRS": "市人社局",
    "HSA": "市医保局",
    "FRB": "市金融监管局",
    "DRC": "市发改委",
    "AAB": "市行政审批局",
    "BDB": "市大数据管理局",
    "JUS": "市司法局",
}


def departments(db: psycopg.Connection[Any]) -> dict[str, tuple[Any, ...]]:
    rows = db.execute("SELECT code, name_zh, domains, retired, replaced_by FROM departments")
    return {r[0]: tuple(r[1:]) for r in rows}


def test_the_plans_departments_with_their_domains(db: psycopg.Connection[Any]) -> None:
    got = departments(db)
    assert {code: got[code][0] for code in PLAN_NAMES} == PLAN_NAMES
    assert "credit" in got["DRC"][1]
    assert "finance" in got["FRB"][1]
    assert "platform" in got["BDB"][1]
    assert "legality_review" in got["JUS"][1]
    assert "administrative_approval" in got["AAB"][1]
    assert "straw_burning" in got["AGR"][1]
    # The finance bureau's code is kept for its history, retired, pointing at the regulator.
    assert got["FIN"][1:] == ([], True, "FRB")
    assert not any(retired for code, (_, _, retired, _) in got.items() if code != "FIN")
    # Seeding again changes nothing (it runs at every start).
    seed_departments(db)
    assert departments(db) == got


def test_a_retired_department_takes_no_new_links(client: TestClient, key: Key) -> None:
    eeb = key("EEB")
    assert client.post(
        "/api/v1/subjects", json={"credit_code": PLANT, "name": "某化工"}, headers=eeb
    ).status_code == 201  # fmt: skip
    r = client.post(
        f"/api/v1/subjects/{PLANT}/departments", json={"department": "FIN"}, headers=key("FIN")
    )
    assert r.status_code == 422
    assert "FIN is retired" in r.json()["detail"]
    assert "use FRB" in r.json()["detail"]
    # FRB, its successor, may ask to join; EEB supervises the subject, so it waits for consent.
    r = client.post(
        f"/api/v1/subjects/{PLANT}/departments", json={"department": "FRB"}, headers=key("FRB")
    )
    assert r.status_code == 202, r.text
    assert r.json()["state"] == "pending"


def test_import_names_a_retired_department(client: TestClient, key: Key) -> None:
    text = f"credit_code,name,departments\n{PLANT},某化工,FIN\n"
    r = client.post(
        "/api/v1/subjects/import",
        content=text.encode(),
        headers={**key("FIN", "admin"), "Content-Type": "text/csv; charset=utf-8"},
    )
    assert r.status_code == 422
    errors = r.json()["report"]["errors"]
    assert [(e["row"], e["column"]) for e in errors] == [(1, "departments")]
    assert "FIN is retired" in errors[0]["reason"]
