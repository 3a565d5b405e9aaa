"""The rule service on a real database: clue rows, restarts, concurrency, reloads."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import orjson
import psycopg

from ingest.models import Reading
from rules.bound import Bound
from rules.engine import ClueOp
from rules.episodes import EpisodeBook
from rules.evaluate import ClueAction, TriggerItem
from rules.models import ClueStatus
from rules.settings import RulesSettings
from rules.store import apply_ops
from tests.rules.conftest import Clock, Recorder, ServiceFactory, store_readings
from tests.rules.support import COD_HIGH, T0, MemoryDirectory, at, device, readings, rule

# Version 3 of the API's rule, for the outlets only, its limit the subject's permit.
RULE = (
    COD_HIGH.replace("version: 1", "version: 3")
    .replace("{metric: cod}", "{metric: cod, role: wastewater_outlet}")
    .replace("limit: 50", "limit: {attribute: permit.cod_mg_l}")
)


def rules_dir(tmp_path: Path, text: str, name: str = "a.yaml") -> Path:
    d = tmp_path / "rules"
    d.mkdir(exist_ok=True)
    (d / name).write_text(text, encoding="utf-8")
    return d


def outlet() -> MemoryDirectory:
    return MemoryDirectory(
        [device("ww-1", "wastewater_outlet", attributes={"permit.cod_mg_l": 50})]
    )


def feed(db: psycopg.Connection[Any], svc: Any, batch: list[Reading]) -> None:
    store_readings(db, batch)
    svc.readings_committed(batch)
    assert svc.wait_idle()


def clue_rows(db: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT id, rule_id, rule_version, status, started_at, ended_at, device_ids, credit_code,"
        " department, severity, trigger FROM clues ORDER BY id"
    ).fetchall()


def test_breach_becomes_a_committed_clue_with_its_readings(
    tmp_path: Path, db: psycopg.Connection[Any], make_service: ServiceFactory
) -> None:
    sink = Recorder()
    svc = make_service(rules_dir(tmp_path, RULE), outlet(), Clock(at(10).timestamp()), [sink])
    feed(db, svc, readings("ww-1", "cod", [(0, 20), (1, 75), (2, 80)]))
    rows = clue_rows(db)
    assert len(rows) == 1
    cid, rule_id, version, status, started, ended, devices, code, dept, sev, trig = rows[0]
    assert (rule_id, version, status, started, ended) == ("cod-high", 3, "firing", at(1), None)
    assert (devices, code, dept, sev) == (["ww-1"], "91310000MA1FL4CT3X", "EEB", "major")
    # The reading that opened it, by its natural key (device, metric, time) and value.
    assert trig == [
        {"time": at(1).isoformat(), "device_id": "ww-1", "metric": "cod", "value": 75.0}
    ]
    assert [(e.clue_id, e.status) for e in sink.events] == [(cid, ClueStatus.FIRING)]
    feed(db, svc, readings("ww-1", "cod", [(3, 10)]))
    assert clue_rows(db)[0][3:6] == ("resolved", at(1), at(3))
    assert [e.status for e in sink.events] == [ClueStatus.FIRING, ClueStatus.RESOLVED]
    assert sink.events[1].clue_id == cid


def test_restart_keeps_a_pending_hold(
    tmp_path: Path, db: psycopg.Connection[Any], make_service: ServiceFactory
) -> None:
    d = rules_dir(tmp_path, RULE + "for: 5m\n")
    clock = Clock(at(3).timestamp())
    first = make_service(d, outlet(), clock)
    feed(db, first, readings("ww-1", "cod", [(0, 90), (1, 90), (2, 90)]))
    first.stop()
    assert clue_rows(db) == []
    second = make_service(d, outlet(), clock)
    feed(db, second, readings("ww-1", "cod", [(3, 90), (4, 90)]))
    assert clue_rows(db) == []
    feed(db, second, readings("ww-1", "cod", [(5, 90)]))
    rows = clue_rows(db)
    assert [(r[3], r[4]) for r in rows] == [("firing", at(0))]


def test_restart_does_not_raise_a_firing_clue_again(
    tmp_path: Path, db: psycopg.Connection[Any], make_service: ServiceFactory
) -> None:
    d = rules_dir(tmp_path, RULE)
    clock = Clock(at(3).timestamp())
    first = make_service(d, outlet(), clock)
    feed(db, first, readings("ww-1", "cod", [(0, 90), (1, 90)]))
    first.stop()
    sink = Recorder()
    second = make_service(d, outlet(), clock, [sink])
    feed(db, second, readings("ww-1", "cod", [(2, 90), (3, 95)]))
    rows = clue_rows(db)
    assert len(rows) == 1
    assert sink.events == []
    feed(db, second, readings("ww-1", "cod", [(4, 10)]))
    assert clue_rows(db)[0][3:6] == ("resolved", at(0), at(4))
    assert [e.clue_id for e in sink.events] == [rows[0][0]]


def test_restart_opens_a_clue_lost_between_commit_and_evaluation(
    tmp_path: Path, db: psycopg.Connection[Any], make_service: ServiceFactory
) -> None:
    # The readings were committed but the process died before the engine saw them.
    store_readings(db, readings("ww-1", "cod", [(0, 90), (1, 90)]))
    sink = Recorder()
    svc = make_service(rules_dir(tmp_path, RULE), outlet(), Clock(at(1).timestamp()), [sink])
    rows = clue_rows(db)
    assert [(r[3], r[4]) for r in rows] == [("firing", at(0))]
    # Handed on by the engine thread, after sinks wired later (alerts) had time to join.
    assert svc.wait_idle()
    assert [e.clue_id for e in sink.events] == [rows[0][0]]


def test_same_breach_delivered_twice_at_once_gives_one_clue(
    tmp_path: Path, db: psycopg.Connection[Any], make_service: ServiceFactory
) -> None:
    d = rules_dir(tmp_path, RULE)
    clock = Clock(at(1).timestamp())
    # Two engines (two instances behind a shared subscription) and a redelivery to one.
    a = make_service(d, outlet(), clock)
    b = make_service(d, outlet(), clock)
    batch = readings("ww-1", "cod", [(0, 90)])
    store_readings(db, batch)
    go = threading.Barrier(3)

    def deliver(svc: Any) -> None:
        go.wait()
        svc.readings_committed(batch)

    threads = [threading.Thread(target=deliver, args=(s,)) for s in (a, b, a)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert a.wait_idle()
    assert b.wait_idle()
    assert len(clue_rows(db)) == 1


def test_invalid_reload_keeps_the_old_rules(
    tmp_path: Path, db: psycopg.Connection[Any], make_service: ServiceFactory
) -> None:
    d = rules_dir(tmp_path, RULE)
    svc = make_service(d, outlet(), Clock(at(5).timestamp()))
    (d / "b.yaml").write_text(RULE.replace("cod-high", "other").replace('op: ">"', "op: '=='"))
    result = svc.reload()
    assert not result.ok
    assert [str(p) for p in result.problems] == [
        "b.yaml:9: rules.0.op: Input should be '>', '>=', '<' or '<='"
    ]
    assert [r.id for r in svc.ruleset.rules] == ["cod-high"]
    feed(db, svc, readings("ww-1", "cod", [(0, 90)]))
    assert len(clue_rows(db)) == 1
    (d / "b.yaml").write_text(RULE.replace("cod-high", "other"))
    result = svc.reload()
    assert result.ok
    assert result.rules == 2
    feed(db, svc, readings("ww-1", "cod", [(1, 90)]))
    # The reload rebuilt state from the database: cod-high stays one clue, `other` opens.
    assert sorted(r[1] for r in clue_rows(db)) == ["cod-high", "other"]


def test_clue_table_follows_the_episode_book(db: psycopg.Connection[Any]) -> None:
    r = rule(kind="threshold", selector={"metric": "x"}, op=">", limit=1)
    b = Bound(r, "d1", None, RulesSettings().credit, 10)
    t = T0.timestamp()
    item = (TriggerItem(t, "d1", "x", 5.0),)

    def op(action: str, start: float, when: float) -> ClueOp:
        return ClueOp(ClueAction(action), b, t + start, t + when, item)

    script = [
        op("open", 0, 0),
        op("open", 0, 0),  # redelivery
        op("open", 60, 60),  # a second open episode of one fingerprint is refused
        op("resolve", 0, 120),
        op("closed", 30, 40),
        op("reopen", 0, 130),
        op("withdraw", 30, 200),
        op("resolve", 0, 300),
        op("open", 400, 400),
        op("withdraw", 400, 450),
        op("open", 400, 460),  # a withdrawn episode shown real again
    ]
    book = EpisodeBook()
    for step in script:
        apply_ops(db, [step])
        book.apply([step])
    rows = db.execute(
        "SELECT started_at, ended_at, withdrawn FROM clues ORDER BY started_at"
    ).fetchall()
    expected = sorted((e.started_at, e.ended_at, e.withdrawn) for e in book.episodes.values())
    assert [(s.timestamp(), e.timestamp() if e else None, w) for s, e, w in rows] == expected
    assert expected == [(t, t + 300, False), (t + 30, t + 40, True), (t + 400, None, False)]
    stored = db.execute("SELECT trigger FROM clues ORDER BY started_at LIMIT 1").fetchone()
    assert stored is not None
    assert stored[0] == orjson.loads(
        orjson.dumps([{"time": T0.isoformat(), "device_id": "d1", "metric": "x", "value": 5.0}])
    )
