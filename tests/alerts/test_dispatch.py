"""Dispatch policy: remote supervision or one joint inspection with the configured lead."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest

from alerts.dispatch import choose_lead, plan_dispatch
from alerts.errors import NotFoundError
from alerts.lifecycle import Action, TransitionRefused
from alerts.outcome import Outcome
from alerts.records import AlertRow, TaskKind, TaskRow, TaskStatus
from alerts.settings import AlertsSettings
from alerts.store import AlertStore
from alerts.subjects_port import StaticSubject
from core.principal import Principal
from rules.models import ClueEvent, Severity
from tests.alerts.support import CHEM, PLANT, SHOP, T0, Clock, clue, subjects

EEB, EMB, AMR = Principal("key 1", "EEB"), Principal("key 2", "EMB"), Principal("key 3", "AMR")
SETTINGS = AlertsSettings()
CROSS = StaticSubject("X", industry="hazardous_chemicals", departments=frozenset({"EEB", "EMB"}))
SINGLE = StaticSubject("Y", industry="wastewater", departments=frozenset({"EEB"}))


@pytest.mark.parametrize(
    ("clue_departments", "subject", "severity", "kind", "lead", "participants"),
    [
        ({"EEB"}, SINGLE, Severity.CRITICAL, TaskKind.REMOTE, "EEB", {"EEB"}),
        ({"EEB"}, None, Severity.CRITICAL, TaskKind.REMOTE, "EEB", {"EEB"}),
        ({"EEB"}, CROSS, Severity.WARNING, TaskKind.REMOTE, "EEB", {"EEB"}),
        ({"EEB"}, CROSS, Severity.MAJOR, TaskKind.JOINT, "EMB", {"EEB", "EMB"}),
        ({"EEB", "AMR"}, SINGLE, Severity.INFO, TaskKind.JOINT, "EEB", {"EEB", "AMR"}),
        ({"EEB", "AMR"}, CROSS, Severity.INFO, TaskKind.JOINT, "EMB", {"EEB", "AMR", "EMB"}),
        ({"EEB", "AMR"}, CROSS, Severity.MAJOR, TaskKind.JOINT, "EMB", {"EEB", "AMR", "EMB"}),
    ],
)
def test_plan(
    clue_departments: set[str],
    subject: StaticSubject | None,
    severity: Severity,
    kind: TaskKind,
    lead: str,
    participants: set[str],
) -> None:
    plan = plan_dispatch(
        clue_departments, dict.fromkeys(clue_departments, severity), subject, severity, SETTINGS, T0
    )
    assert (plan.kind, plan.lead, set(plan.participants)) == (kind, lead, participants)
    assert (plan.due_at - T0).total_seconds() == SETTINGS.sla_hours[severity] * 3600


def test_lead_falls_back_to_tags_then_severity_then_code() -> None:
    tagged = StaticSubject("Z", industry="unknown", tags=frozenset({"food", "zzz"}))
    assert choose_lead({"AMR", "EEB"}, tagged, SETTINGS.lead_by_domain, {})[0] == "AMR"
    plain = StaticSubject("Z", industry="unknown")
    by_sev = {"AMR": Severity.WARNING, "HLT": Severity.CRITICAL}
    assert choose_lead({"AMR", "HLT"}, plain, SETTINGS.lead_by_domain, by_sev)[0] == "HLT"
    assert choose_lead({"HLT", "AMR"}, plain, SETTINGS.lead_by_domain, {})[0] == "AMR"
    # A configured lead that takes no part does not lead.
    assert choose_lead({"AMR", "HLT"}, CROSS, SETTINGS.lead_by_domain, by_sev)[0] == "HLT"


def test_lead_policy_is_configurable() -> None:
    settings = AlertsSettings(lead_by_domain={"hazardous_chemicals": "EEB"})
    plan = plan_dispatch({"EEB", "EMB"}, {}, CROSS, Severity.MAJOR, settings, T0)
    assert plan.lead == "EEB"


def tasks(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT id, kind, lead_department, departments, status FROM tasks ORDER BY id"
    ).fetchall()


def dispatched(
    db: psycopg.Connection[Any], store: AlertStore, event: ClueEvent, actor: Principal = EEB
) -> tuple[AlertRow, TaskRow, Outcome]:
    """The alert `event` opens or joins, dispatched by `actor`: the alert, its task, and the
    outcome (with the alert as the dispatch left it)."""
    out = store.apply_clue(db, event)
    assert out.alert is not None
    d = store.dispatch(db, out.alert.id, actor)
    assert d.task is not None
    return out.alert, d.task, d


def test_single_department_gets_a_remote_task(
    db: psycopg.Connection[Any], store: AlertStore
) -> None:
    _, task, d = dispatched(db, store, clue(PLANT, "EEB", Severity.MAJOR))
    assert d.alert is not None
    assert (task.kind, task.lead_department, task.departments) == (
        TaskKind.REMOTE,
        "EEB",
        ["EEB"],
    )
    assert d.alert.state.value == "dispatched"
    assert task.due_at - d.alert.updated_at == timedelta(hours=SETTINGS.sla_hours[Severity.MAJOR])


def test_two_departments_one_joint_task_and_later_clues_attach(
    db: psycopg.Connection[Any], store: AlertStore, clock: Clock
) -> None:
    store.apply_clue(db, clue(CHEM, "EEB", Severity.WARNING))
    alert, joint, _ = dispatched(db, store, clue(CHEM, "EMB", Severity.WARNING, rule_id="r-lel"))
    assert (joint.kind, joint.lead_department) == (TaskKind.JOINT, "EMB")  # hazardous_chemicals
    # A further clue joins the dispatched alert and so the task; no second task.
    store.apply_clue(db, clue(CHEM, "AMR", Severity.CRITICAL, rule_id="r-boiler"))
    (task,) = tasks(db)
    assert task[1:] == ("joint", "EMB", ["AMR", "EEB", "EMB"], "planned")
    assert db.execute("SELECT severity FROM tasks").fetchone() == ("critical",)
    # A participant cannot resolve it: the task's lead closes the two together.
    with pytest.raises(TransitionRefused) as refused:
        store.transition(db, alert.id, Action.RESOLVE, EEB, note="looks fine")
    assert refused.value.code == "lead_only"
    with pytest.raises(TransitionRefused) as refused:
        store.transition(db, alert.id, Action.RESOLVE, EMB)
    assert refused.value.code == "findings_required"
    store.transition(db, alert.id, Action.RESOLVE, EMB, note="site inspected, leak fixed")
    assert tasks(db)[0][1:] == ("joint", "EMB", ["AMR", "EEB", "EMB"], "done")
    # A new alert on the subject, dispatched, opens a new joint task (the old one is closed).
    clock.advance(7200)
    again, new_task, _ = dispatched(db, store, clue(CHEM, "EEB", Severity.MAJOR, rule_id="r-nh3"))
    assert again.id != alert.id
    assert new_task.id != task[0]
    assert len(tasks(db)) == 2
    linked = db.execute("SELECT alert_id FROM task_alerts ORDER BY alert_id").fetchall()
    assert linked == [(alert.id,), (again.id,)]


def test_cross_department_subject_at_major_is_joint(
    db: psycopg.Connection[Any], store: AlertStore
) -> None:
    low, task, _ = dispatched(db, store, clue(SHOP, "EEB", Severity.WARNING))
    assert task.kind is TaskKind.REMOTE
    store.transition(db, low.id, Action.RESOLVE, EEB, note="checked remotely")
    _, task, d = dispatched(db, store, clue(SHOP, "EEB", Severity.MAJOR, rule_id="r2"))
    assert (task.kind, task.lead_department, sorted(task.departments)) == (
        TaskKind.JOINT, "AMR", ["AMR", "EEB"])  # fmt: skip
    # Participants see the alert now.
    assert d.alert is not None
    assert "AMR" in d.alert.departments


def test_task_status_planned_in_progress_done_with_findings(
    db: psycopg.Connection[Any], store: AlertStore
) -> None:
    store.apply_clue(db, clue(CHEM, "EEB"))
    _, task, _ = dispatched(db, store, clue(CHEM, "EMB", rule_id="r-lel"), EMB)
    with pytest.raises(NotFoundError):
        store.update_task(db, task.id, TaskStatus.IN_PROGRESS, AMR)
    store.update_task(db, task.id, TaskStatus.IN_PROGRESS, EEB)
    with pytest.raises(TransitionRefused, match="findings"):
        store.update_task(db, task.id, TaskStatus.DONE, EMB, "  ")
    with pytest.raises(TransitionRefused, match="only the lead department EMB"):
        store.update_task(db, task.id, TaskStatus.DONE, EEB, "valve replaced")
    done = store.update_task(db, task.id, TaskStatus.DONE, EMB, "valve replaced")
    assert done.task is not None
    assert done.task.findings == "valve replaced"
    with pytest.raises(TransitionRefused, match="it can move to: nothing"):
        store.update_task(db, task.id, TaskStatus.IN_PROGRESS, EMB)
    # Done closes the dispatched alert.
    assert db.execute("SELECT state, closed_by FROM alerts").fetchone() == ("resolved", "system")


def test_concurrent_dispatch_of_two_alerts_still_one_open_joint_task(
    db_url: str, clock: Clock
) -> None:
    import threading

    store = AlertStore(AlertsSettings(), subjects(), clock)
    with psycopg.connect(db_url, autocommit=True) as conn:
        ids = []
        for n, dept in enumerate(("EEB", "EMB")):
            out = store.apply_clue(conn, clue(CHEM, dept, rule_id=f"r{n}"))
            assert out.alert is not None
            ids.append(out.alert.id)
    # One alert, two departments: dispatching twice at once cannot make two tasks.
    barrier = threading.Barrier(2)
    results: list[object] = []

    def go(actor: Principal) -> None:
        with psycopg.connect(db_url, autocommit=True) as conn:
            barrier.wait()
            try:
                results.append(store.dispatch(conn, ids[0], actor).task)
            except TransitionRefused as err:
                results.append(err.code)

    threads = [threading.Thread(target=go, args=(a,)) for a in (EEB, EMB)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2
    assert "not_allowed" in results  # the second found it dispatched already
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM tasks").fetchone() == (1,)
