"""Credit-tiered handling in alerts: dispatch method, frequency floor of draws, notification
hold and batching, and the scheme data's validation (tests/rules/test_credit_handling.py runs
the whole chain from readings)."""

from __future__ import annotations

import math
import random
from datetime import timedelta
from importlib import resources
from typing import Any

import psycopg
import pytest
from pydantic import ValidationError

from alerts import draws
from alerts.dispatch import plan_dispatch
from alerts.draws import sample
from alerts.lifecycle import Action
from alerts.records import NotifyEvent, TaskKind
from alerts.routing import hold_s
from alerts.settings import AlertsSettings, CreditHandling, NotificationRoute
from alerts.store import AlertStore
from alerts.subjects_port import StaticSubject, StaticSubjects
from core.principal import Principal
from rules.models import Severity
from subjects.credit import HANDLING, load_handling
from subjects.models import CreditGrade, EnvColour, Grade, SupervisionMethod
from tests.alerts.support import SHOP, T0, Clock, clue, subjects

SETTINGS = AlertsSettings()
EEB = Principal("key 1", "EEB")


def subject(grade: Grade, *departments: str) -> StaticSubject:
    return StaticSubject(f"S-{grade.value}", industry="hazardous_chemicals",
                         credit_grade=grade, departments=frozenset(departments))  # fmt: skip


@pytest.mark.parametrize(
    ("grade", "departments", "kind"),
    [
        (CreditGrade.B, ("EEB",), TaskKind.REMOTE),
        (CreditGrade.D, ("EEB",), TaskKind.ONSITE),
        (EnvColour.BLUE, ("EEB",), TaskKind.REMOTE),
        (EnvColour.RED, ("EEB",), TaskKind.ONSITE),
        # A cross-department subject: joint from `joint_min_severity` (major) as before, but
        # at any severity when its grade is handled on site.
        (CreditGrade.B, ("EEB", "EMB"), TaskKind.REMOTE),
        (CreditGrade.D, ("EEB", "EMB"), TaskKind.JOINT),
        (EnvColour.BLACK, ("EEB", "EMB"), TaskKind.JOINT),
    ],
)
def test_dispatch_method_follows_the_grade(
    grade: Grade, departments: tuple[str, ...], kind: TaskKind
) -> None:
    s = subject(grade, *departments)
    plan = plan_dispatch({"EEB"}, {"EEB": Severity.WARNING}, s, Severity.WARNING, SETTINGS, T0)
    assert plan.kind is kind
    if kind is TaskKind.JOINT:
        assert plan.participants == frozenset(departments)
        assert f"credit grade {grade.value}: on site" in plan.reason


def test_an_unbound_device_is_handled_remotely() -> None:
    plan = plan_dispatch({"EEB"}, {"EEB": Severity.MAJOR}, None, Severity.MAJOR, SETTINGS, T0)
    assert plan.kind is TaskKind.REMOTE


def test_sampling_draws_the_subjects_due_by_frequency_first() -> None:
    ratios = SETTINGS.draw_ratios
    subjects_ = [StaticSubject(f"R{n}", credit_grade=EnvColour.RED) for n in range(10)]
    for seed in range(20):
        drawn = sample(subjects_, ratios, random.Random(seed), due={"R3", "R7"})
        assert {"R3", "R7"} <= set(drawn)
        assert len(drawn) == math.ceil(10 * ratios[EnvColour.RED])  # they count toward it
    # More due than the share: all of them, nothing at random.
    assert sample(subjects_, ratios, random.Random(1), due={f"R{n}" for n in range(6)}) == [
        f"R{n}" for n in range(6)
    ]


def test_a_sampled_draw_includes_subjects_past_their_inspection_frequency(
    db: psycopg.Connection[Any],
) -> None:
    # Red: at least every 180 days; yellow: every 365; blue: no floor (random alone).
    reds = [f"RED{n}" for n in range(5)]
    yellows = [f"YEL{n}" for n in range(10)]
    blues = [f"BLU{n}" for n in range(10)]
    lookup = StaticSubjects(
        [StaticSubject(c, credit_grade=EnvColour.RED, departments=frozenset({"EEB"}))
         for c in reds]
        + [StaticSubject(c, credit_grade=EnvColour.YELLOW, departments=frozenset({"EEB"}))
           for c in yellows]
        + [StaticSubject(c, credit_grade=EnvColour.BLUE, departments=frozenset({"EEB"}))
           for c in blues]
    )  # fmt: skip
    clock = Clock()
    clock.now = T0 - timedelta(days=200)
    draws.submit(db, lookup, SETTINGS, EEB, "2026-Q2", ["RED0", *yellows], None, clock())
    clock.now = T0 - timedelta(days=10)
    draws.submit(db, lookup, SETTINGS, EEB, "2026-Q4a", ["RED1", "RED2", "RED3"], None, clock())
    clock.now = T0
    for seed in range(5):
        draw_id, drawn = draws.submit(
            db, lookup, SETTINGS, EEB, f"2026-Q4-{seed}", None, seed, clock()
        )
        method = db.execute("SELECT method FROM draws WHERE id = %s", (draw_id,)).fetchone()
        assert method is not None
        # RED0 was drawn 200 days ago, RED4 never: both due; yellows drawn 200 days ago are
        # not; blues have no floor. Once drawn (the first loop), nothing is due any more.
        if seed == 0:
            assert method[0]["due_by_frequency"] == ["RED0", "RED4"]
            assert {"RED0", "RED4"} <= set(drawn)
        else:
            assert method[0]["due_by_frequency"] == []
        assert len([c for c in drawn if c.startswith("RED")]) == 2  # ceil(5 × 0.4)
        assert len([c for c in drawn if c.startswith("YEL")]) == 2  # ceil(10 × 0.2)
        assert len([c for c in drawn if c.startswith("BLU")]) == 1  # ceil(10 × 0.1)


def route(name: str = "eeb", department: str = "EEB") -> NotificationRoute:
    return NotificationRoute(name=name, kind="webhook", url="http://127.0.0.1:9/",
                             secret="s3cret-for-tests", department=department)  # fmt: skip


def test_a_held_notice_is_batched_into_the_next_one(
    db: psycopg.Connection[Any], clock: Clock
) -> None:
    store = AlertStore(AlertsSettings(routes=[route()]), subjects(), clock)  # SHOP is grade A
    outcome = store.apply_clue(db, clue(SHOP, "EEB", Severity.WARNING))
    assert outcome.alert is not None
    clock.advance(300)
    store.transition(db, outcome.alert.id, Action.RESOLVE, EEB, note="checked")
    rows = db.execute(
        "SELECT id, event, status, suppressed_by, next_attempt_at FROM outbox ORDER BY id"
    ).fetchall()
    release = T0 + timedelta(minutes=30)  # grade A: held 30 minutes, and the batch not longer
    assert [r[1:] for r in rows] == [
        ("opened", "suppressed", f"batched:{rows[1][0]}", release),
        ("resolved", "pending", None, release),
    ]


def test_a_graver_notice_takes_the_held_one_with_it_at_once(
    db: psycopg.Connection[Any], clock: Clock
) -> None:
    store = AlertStore(AlertsSettings(routes=[route()]), subjects(), clock)  # SHOP is grade A
    store.apply_clue(db, clue(SHOP, "EEB", Severity.WARNING))
    clock.advance(60)
    store.apply_clue(db, clue(SHOP, "EEB", Severity.MAJOR, rule_id="r-spike"))
    rows = db.execute(
        "SELECT id, event, status, suppressed_by, next_attempt_at FROM outbox ORDER BY id"
    ).fetchall()
    # The escalated (major) notice is not held, and the held warning one does not trail it.
    assert [r[1:] for r in rows] == [
        ("opened", "suppressed", f"batched:{rows[1][0]}", T0 + timedelta(minutes=30)),
        ("escalated", "pending", None, T0 + timedelta(minutes=1)),
    ]


@pytest.mark.parametrize(
    ("grade", "severity", "event", "held"),
    [
        (CreditGrade.A, Severity.WARNING, NotifyEvent.OPENED, 1800.0),
        (CreditGrade.B, Severity.INFO, NotifyEvent.OPENED, 0.0),  # B is the neutral grade
        (CreditGrade.D, Severity.WARNING, NotifyEvent.OPENED, 0.0),
        (EnvColour.GREEN, Severity.WARNING, NotifyEvent.REPEAT, 1800.0),
        (EnvColour.BLACK, Severity.INFO, NotifyEvent.OPENED, 0.0),
        # Graver alerts and escalations are never held, whatever the grade.
        (CreditGrade.A, Severity.MAJOR, NotifyEvent.OPENED, 0.0),
        (CreditGrade.A, Severity.WARNING, NotifyEvent.OVERDUE, 0.0),
        (None, Severity.WARNING, NotifyEvent.OPENED, 0.0),
    ],
)
def test_hold_by_grade_and_severity(
    db: psycopg.Connection[Any],
    grade: Grade | None,
    severity: Severity,
    event: NotifyEvent,
    held: float,
) -> None:
    store = AlertStore(SETTINGS, subjects(), Clock())
    outcome = store.apply_clue(db, clue(SHOP, "EEB", severity))
    assert outcome.alert is not None
    assert hold_s(SETTINGS, grade, outcome.alert, event) == held


def test_escalation_needs_its_time_and_recipients_together() -> None:
    with pytest.raises(ValidationError, match="escalate_after_s and escalate_to"):
        CreditHandling(method=SupervisionMethod.REMOTE, escalate_after_s=60)
    with pytest.raises(ValidationError, match="escalate_after_s and escalate_to"):
        CreditHandling(method=SupervisionMethod.REMOTE, escalate_to=["DRC"])


def test_the_scheme_data_names_what_is_wrong() -> None:
    text = resources.files("subjects").joinpath("credit_handling.yaml").read_text("utf-8")
    assert load_handling(text) == HANDLING
    with pytest.raises(ValueError, match=r"jiangsu_env\.black is missing"):
        load_handling(text.replace("    black:", "    purple:"))
    with pytest.raises(ValueError, match=r"abcd\.D\.method: Input should be"):
        load_handling(text.replace("method: on_site, draw_ratio: 0.40,\n        inspect_every_"
                                   "days: 180, escalate_after_s: 7200",
                                   "method: visit, draw_ratio: 0.40,\n        inspect_every_"
                                   "days: 180, escalate_after_s: 7200", 1))  # fmt: skip


def test_every_grade_of_both_schemes_has_its_handling() -> None:
    assert set(SETTINGS.credit_handling) == set(CreditGrade) | set(EnvColour)
    # Worse grade: never handled more lightly.
    for scheme in (list(CreditGrade), list(EnvColour)):
        afters = [SETTINGS.credit_handling[g].escalate_after_s or math.inf for g in scheme]
        assert afters == sorted(afters, reverse=True)
        holds = [SETTINGS.credit_handling[g].notify_hold_s for g in scheme]
        assert holds == sorted(holds, reverse=True)


def test_a_reopened_alert_escalates_again_from_its_reopening(
    db: psycopg.Connection[Any], clock: Clock
) -> None:
    d = StaticSubject("S-D", credit_grade=CreditGrade.D, departments=frozenset({"EEB"}))
    store = AlertStore(AlertsSettings(routes=[route("drc", "DRC")]), StaticSubjects([d]), clock)
    opened = store.apply_clue(db, clue("S-D", "EEB", Severity.WARNING, rule_id="r1")).alert
    assert opened is not None
    clock.advance(2 * 3600)
    assert len(store.escalate_due(db)) == 1
    assert store.escalate_due(db) == []  # once per episode
    store.transition(db, opened.id, Action.RESOLVE, EEB, note="fixed")
    clock.advance(600)
    again = store.apply_clue(db, clue("S-D", "EEB", Severity.WARNING, rule_id="r2")).alert
    assert again is not None
    assert (again.id, again.reopen_count) == (opened.id, 1)
    clock.advance(2 * 3600 - 1)
    assert store.escalate_due(db) == []  # two hours from the reopening, not the opening
    clock.advance(1)
    assert [e.departments for e in store.escalate_due(db)] == [("DRC",)]
    rows = db.execute(
        "SELECT reopen_count, credit_grade, departments FROM alert_escalations ORDER BY 1"
    ).fetchall()
    assert rows == [(0, "D", ["DRC"]), (1, "D", ["DRC"])]
    # DRC's route: told of the escalation, then (having joined the alert) of its resolution
    # and reopening, then of the second escalation.
    events = [r[0] for r in db.execute("SELECT event FROM outbox ORDER BY id")]
    assert events == ["overdue", "resolved", "reopened", "overdue"]
