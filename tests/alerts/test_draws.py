"""Double-random draws: sampling by credit grade and the merge into joint inspections."""

from __future__ import annotations

import random
from collections import Counter

from alerts.draws import sample
from alerts.settings import AlertsSettings
from alerts.subjects_port import StaticSubject
from subjects.models import CreditGrade, EnvColour, Grade
from tests.alerts.conftest import Api
from tests.alerts.support import CHEM, PLANT, SHOP

G = CreditGrade


def population(per_grade: int) -> list[StaticSubject]:
    return [
        StaticSubject(f"{grade.value}{n:04d}", credit_grade=grade)
        for grade in CreditGrade
        for n in range(per_grade)
    ]


def test_sampling_ratio_rises_as_the_grade_worsens() -> None:
    ratios = AlertsSettings().draw_ratios
    drawn = sample(population(100), ratios, random.Random(7))
    by_grade = Counter(code[0] for code in drawn)
    assert by_grade == {"A": 5, "B": 10, "C": 20, "D": 40}
    assert drawn == sorted(set(drawn))


def test_five_colour_grades_are_drawn_by_their_own_ratios() -> None:
    ratios = AlertsSettings().draw_ratios
    subjects = [
        StaticSubject(f"{colour.value}{n:04d}", credit_grade=colour)
        for colour in EnvColour
        for n in range(100)
    ]
    drawn = sample(subjects, ratios, random.Random(3))
    by_colour = Counter(code.rstrip("0123456789") for code in drawn)
    assert by_colour == {"green": 5, "blue": 10, "yellow": 20, "red": 40, "black": 100}


def test_sampling_rounds_up_and_is_reproducible_with_a_seed() -> None:
    subjects = population(3)
    ratios: dict[Grade, float] = {G.A: 0.0, G.B: 0.1, G.C: 0.5, G.D: 1.0}
    first = sample(subjects, ratios, random.Random(1))
    assert Counter(c[0] for c in first) == {"B": 1, "C": 2, "D": 3}
    assert sample(subjects, ratios, random.Random(1)) == first
    seen = {tuple(sample(subjects, ratios, random.Random(s))) for s in range(20)}
    assert len(seen) > 1  # it is random


def test_merge_turns_subjects_drawn_by_two_departments_into_joint_tasks(api: Api) -> None:
    c = api.client
    r = c.post("/api/v1/inspections/draws", json={"period": "2026-Q4",
               "credit_codes": [CHEM, PLANT, SHOP]}, headers=api.as_("EEB-officer"))  # fmt: skip
    assert r.status_code == 201
    assert r.json()["credit_codes"] == sorted([CHEM, PLANT, SHOP])
    # A department may only draw subjects it supervises.
    r = c.post("/api/v1/inspections/draws", json={"period": "2026-Q4", "credit_codes": [PLANT]},
               headers=api.as_("EMB-officer"))  # fmt: skip
    assert r.status_code == 422
    assert PLANT in r.text
    c.post("/api/v1/inspections/draws", json={"period": "2026-Q4", "credit_codes": [CHEM]},
           headers=api.as_("EMB-officer"))  # fmt: skip
    c.post("/api/v1/inspections/draws", json={"period": "2026-Q4", "credit_codes": [SHOP]},
           headers=api.as_("AMR-officer"))  # fmt: skip
    c.post("/api/v1/inspections/draws", json={"period": "2026-Q3", "credit_codes": [SHOP]},
           headers=api.as_("EEB-officer"))  # fmt: skip
    # A department with no draw in the period cannot start its merge.
    r = c.post("/api/v1/inspections/draws/merge", json={"period": "2026-Q3"},
               headers=api.as_("EMB-officer"))  # fmt: skip
    assert r.status_code == 422
    assert "EMB has no draw in '2026-Q3'" in r.json()["detail"]
    assert c.get("/api/v1/tasks", params={"kind": "joint"},
                 headers=api.as_("EEB-viewer")).json() == []  # fmt: skip
    r = c.post("/api/v1/inspections/draws/merge", json={"period": "2026-Q4"},
               headers=api.as_("EEB-officer"))  # fmt: skip
    body = r.json()
    assert body["joint_tasks"] == 2
    tasks = {t["subject_key"]: t for t in body["tasks"]}
    assert set(tasks) == {CHEM, SHOP}  # PLANT was drawn by EEB alone
    assert (tasks[CHEM]["lead_department"], tasks[CHEM]["departments"]) == ("EMB", ["EEB", "EMB"])
    assert (tasks[SHOP]["lead_department"], tasks[SHOP]["departments"]) == ("AMR", ["AMR", "EEB"])
    assert {t["kind"] for t in tasks.values()} == {"joint"}
    assert {t["source"] for t in tasks.values()} == {"draw"}
    assert {t["draw_period"] for t in tasks.values()} == {"2026-Q4"}
    # EMB sees only the task it takes part in; merging again joins the same tasks.
    r = c.post("/api/v1/inspections/draws/merge", json={"period": "2026-Q4"},
               headers=api.as_("EMB-officer"))  # fmt: skip
    assert [t["id"] for t in r.json()["tasks"]] == [tasks[CHEM]["id"]]
    listed = c.get("/api/v1/tasks", params={"kind": "joint"}, headers=api.as_("EEB-viewer")).json()
    assert len(listed) == 2


def test_generated_draw_uses_grade_ratios(api: Api) -> None:
    r = api.client.post("/api/v1/inspections/draws", json={"period": "2026-11", "seed": 3},
                        headers=api.as_("EEB-officer"))  # fmt: skip
    assert r.status_code == 201
    # EEB supervises three subjects (grades C, B, A): ceil(1 x ratio) draws each one.
    assert r.json()["credit_codes"] == sorted([CHEM, PLANT, SHOP])
    listed = api.client.get("/api/v1/inspections/draws", params={"period": "2026-11"},
                            headers=api.as_("EEB-viewer")).json()  # fmt: skip
    assert [d["id"] for d in listed] == [r.json()["id"]]
