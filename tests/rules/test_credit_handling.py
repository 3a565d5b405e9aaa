"""Credit changes handling, never the law: the sample pack's permit rule on three subjects of
grades A and D (scheme abcd) and black (jiangsu_env), through the rule service, the alerts
store and the real database.

The same permit limit and the same readings give the same exceedance for all three; what
differs is what subjects/credit_handling.yaml says: the dispatch method, how soon an
unacknowledged alert escalates and to whom, and how long its notice is held.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool

from alerts.lifecycle import Action
from alerts.metrics import AlertsMetrics
from alerts.notify.channels import build_notifiers
from alerts.outbox import OutboxDelivery
from alerts.settings import AlertsSettings, NotificationRoute
from alerts.store import AlertStore
from alerts.subjects_port import StaticSubject, StaticSubjects
from core.principal import Principal
from ingest.models import Reading
from rules.models import ClueEvent
from subjects.models import CreditGrade, EnvColour, Grade
from tests.alerts.support import Receiver, free_port
from tests.rules.conftest import Clock, Recorder, ServiceFactory, store_readings
from tests.rules.support import MemoryDirectory, at, device

PACK = Path(__file__).parents[2] / "deploy" / "rules"
# Unified social credit codes of three dischargers, one per grade.
GRADES: dict[str, Grade] = {
    "91320500MA1GAAAA0A": CreditGrade.A,
    "91320500MA1GDDDD0D": CreditGrade.D,
    "91320500MA1GKKKK0K": EnvColour.BLACK,
}
DEVICE = {code: f"ww-{grade.value}" for code, grade in GRADES.items()}
EEB = Principal("key 1", "EEB")
SECRET = "s3cret-for-tests"


class AlertClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def route(name: str, department: str, url: str = "http://127.0.0.1:9/") -> NotificationRoute:
    return NotificationRoute(
        name=name, kind="webhook", url=url, secret=SECRET, department=department
    )


def cod_clues(
    db: psycopg.Connection[Any], make_service: ServiceFactory, tmp_path: Path
) -> dict[str, ClueEvent]:
    """Run the sample pack's wastewater rules over one at-limit hour and one just-over hour."""
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    shutil.copy(PACK / "wastewater.yaml", rules_dir)
    directory = MemoryDirectory(
        [
            device(DEVICE[code], "wastewater_outlet", credit_code=code, grade=grade,
                   attributes={"permit.cod_mg_l": 50.0})
            for code, grade in GRADES.items()
        ]
    )  # fmt: skip
    sink = Recorder()
    svc = make_service(rules_dir, directory, Clock(at(-1).timestamp()), sinks=[sink])
    data: list[Reading] = []
    for device_id in DEVICE.values():
        data += [Reading(at(m), device_id, "cod", 50.0) for m in range(0, 60)]  # = the limit
        data += [Reading(at(m), device_id, "cod", 50.5) for m in range(60, 120)]  # just over
        data.append(Reading(at(120), device_id, "cod", 20.0))  # decides the second hour
    data.sort(key=lambda r: r.time)
    store_readings(db, data)
    svc.readings_committed(data)
    assert svc.wait_idle(60)
    clues = [e for e in sink.events if e.rule_id == "ww-cod-over-permit"]
    # One clue per subject, each on the second hour only: 50.0 is no exceedance for any
    # grade, 50.5 is one for every grade.
    assert sorted(e.credit_code or "" for e in clues) == sorted(GRADES)
    assert {e.started_at for e in clues} == {at(60)}
    return {e.credit_code or "": e for e in clues}


def test_same_exceedance_different_handling(
    db: psycopg.Connection[Any],
    db_url: str,
    make_service: ServiceFactory,
    tmp_path: Path,
) -> None:
    clues = cod_clues(db, make_service, tmp_path)
    a, d, black = (next(c for c, g in GRADES.items() if g is x) for x in
                   (CreditGrade.A, CreditGrade.D, EnvColour.BLACK))  # fmt: skip
    # The limit the clue was judged against is the permit's, 50, for every grade.
    for code, event in clues.items():
        assert f"{DEVICE[code]} cod:avg = 50.5 (limit 50) since" in event.summary, event.summary
    # Severity is handling: A one step lower, D and black one step higher than written.
    assert clues[a].severity.value == "warning"
    assert clues[d].severity.value == clues[black].severity.value == "critical"

    receiver = Receiver(free_port())
    receiver.start()
    try:
        settings = AlertsSettings(
            routes=[route("eeb", "EEB", receiver.url), route("drc", "DRC"), route("jus", "JUS")]
        )
        subjects = StaticSubjects(
            StaticSubject(code, industry="wastewater", credit_grade=grade,
                          departments=frozenset({"EEB"}))
            for code, grade in GRADES.items()
        )  # fmt: skip
        t0 = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
        clock = AlertClock(t0)
        store = AlertStore(settings, subjects, clock)
        alert_of = {}
        for code, event in clues.items():
            outcome = store.apply_clue(db, event)
            assert outcome.alert is not None
            alert_of[code] = outcome.alert.id

        # Notification hold: A's warning notice waits 30 minutes; D's and black's go at once.
        held = dict(
            db.execute(
                "SELECT subject_key, next_attempt_at FROM outbox WHERE route = 'eeb'"
                " AND event = 'opened'"
            ).fetchall()
        )
        assert held == {a: t0 + timedelta(minutes=30), d: t0, black: t0}
        pool = ConnectionPool(db_url, min_size=1, max_size=2, open=True)
        try:
            delivery = OutboxDelivery(
                settings, pool, build_notifiers(settings.routes[:1]),
                AlertsMetrics(CollectorRegistry()), clock,
            )  # fmt: skip
            assert delivery.deliver_due().sent == 2
            sent = {r.json()["alert"]["subject_key"] for r in receiver.bodies()}
            assert sent == {d, black}

            # Escalation of an unacknowledged alert: black after 1 h to DRC and JUS, D after
            # 2 h to DRC, A never.
            def overdue() -> dict[str, list[str]]:
                found: dict[str, list[str]] = {}
                for key, name in db.execute(
                    "SELECT subject_key, route FROM outbox WHERE event = 'overdue' ORDER BY id"
                ).fetchall():
                    found.setdefault(key, []).append(name)
                return found

            clock.now = t0 + timedelta(minutes=59)
            assert store.escalate_due(db) == []
            clock.now = t0 + timedelta(hours=1)
            assert [e.alert.subject_key for e in store.escalate_due(db)] == [black]
            assert overdue() == {black: ["drc", "jus"]}
            clock.now = t0 + timedelta(hours=2)
            assert [e.alert.subject_key for e in store.escalate_due(db)] == [d]
            assert overdue() == {black: ["drc", "jus"], d: ["drc"]}
            clock.now = t0 + timedelta(days=3)
            assert store.escalate_due(db) == []  # A never; the others only once
            departments = dict(db.execute("SELECT subject_key, departments FROM alerts").fetchall())
            assert departments == {a: ["EEB"], d: ["DRC", "EEB"], black: ["DRC", "EEB", "JUS"]}
            timeline = db.execute(
                "SELECT detail FROM alert_timeline WHERE kind = 'overdue_escalated'"
                " AND alert_id = %s",
                (alert_of[black],),
            ).fetchone()
            assert timeline is not None
            assert timeline[0] == {"credit_grade": "black", "after_s": 3600.0,
                                   "to": ["DRC", "JUS"]}  # fmt: skip

            # After its hold, A's notice goes out too.
            assert delivery.deliver_due().sent == 1
            assert {r.json()["alert"]["subject_key"] for r in receiver.bodies()} == set(GRADES)
        finally:
            pool.close()

        # Supervision method: A is handled remotely, D and black on site.
        kinds = {}
        for code, alert_id in alert_of.items():
            outcome = store.transition(db, alert_id, Action.DISPATCH, EEB)
            assert outcome.task is not None
            kinds[code] = outcome.task.kind.value
        assert kinds == {a: "remote", d: "onsite", black: "onsite"}
        stored = dict(db.execute("SELECT credit_code, kind FROM tasks").fetchall())
        assert stored == kinds
    finally:
        receiver.stop()
