"""The board's query on a real database: scope, filters, search codes, sort, paging, counts."""

from __future__ import annotations

from typing import Any

import psycopg

from alerts import queries
from alerts.queries import BoardFilter, BoardSort


def _seed(db: psycopg.Connection[Any]) -> None:
    rows = [
        # subject, severity, departments, grid, state, minutes ago
        ("S1", "critical", ["EEB"], "G-1", "open", 5),
        ("S2", "warning", ["EEB", "EMB"], "G-2", "acknowledged", 10),
        ("S3", "major", ["EMB"], "G-1", "open", 15),
        ("S4", "info", ["EEB"], "G-2", "dispatched", 20),
    ]
    for subject, sev, depts, grid, state, ago in rows:
        db.execute(
            "INSERT INTO alerts (subject_key, credit_code, state, severity, departments, grid,"
            " opened_at, updated_at, dispatched_at) VALUES (%s, %s, %s, %s, %s, %s,"
            " now() - make_interval(mins => %s), now(),"
            " CASE WHEN %s = 'dispatched' THEN now() END)",
            (subject, subject, state, sev, depts, grid, ago, state),
        )
    db.execute(
        "INSERT INTO tasks (kind, source, subject_key, credit_code, lead_department, departments,"
        " severity, status, due_at, created_at, created_by, updated_at)"
        " VALUES ('remote', 'alert', 'S4', 'S4', 'EEB', '{EEB}', 'info', 'planned',"
        " now() + interval '1 day', now(), 'key:1', now())"
    )
    db.execute(
        "INSERT INTO task_alerts (task_id, alert_id, attached_at) SELECT t.id, a.id, now()"
        " FROM tasks t, alerts a WHERE a.subject_key = 'S4'"
    )


def _subjects(page: queries.BoardPage) -> list[str]:
    return [r.alert.subject_key for r in page.rows]


def test_board_scopes_filters_sorts_and_pages(db: psycopg.Connection[Any]) -> None:
    _seed(db)
    page = queries.board(db, BoardFilter(department="EEB"))
    assert _subjects(page) == ["S1", "S2", "S4"]  # newest first, EMB's S3 not visible
    assert page.total == 3
    assert page.open_by_state == {"open": 1, "acknowledged": 1, "dispatched": 1}
    by_sev = queries.board(db, BoardFilter(department="EEB", sort=BoardSort.SEVERITY))
    assert _subjects(by_sev) == ["S1", "S2", "S4"]
    asc = queries.board(
        db, BoardFilter(department="EEB", sort=BoardSort.SEVERITY, descending=False)
    )
    assert _subjects(asc) == ["S4", "S2", "S1"]
    assert _subjects(
        queries.board(db, BoardFilter(department="EEB", severities=("critical",)))
    ) == ["S1"]
    assert _subjects(queries.board(db, BoardFilter(department="EEB", grid="G-2"))) == ["S2", "S4"]
    assert _subjects(queries.board(db, BoardFilter(department="EEB", involving="EMB"))) == ["S2"]
    lead = queries.board(db, BoardFilter(department="EEB", we_lead=True))
    assert _subjects(lead) == ["S4"]
    assert lead.rows[0].task_kind == "remote"
    assert lead.rows[0].lead_department == "EEB"
    assert _subjects(queries.board(db, BoardFilter(department="EEB", credit_codes=("S2",)))) == [
        "S2"
    ]
    assert _subjects(queries.board(db, BoardFilter(department="EEB", credit_codes=()))) == []
    assert _subjects(queries.board(db, BoardFilter(department="EEB", code_prefix="s4"))) == ["S4"]
    second = queries.board(db, BoardFilter(department="EEB", limit=2, offset=2))
    assert _subjects(second) == ["S4"]
    assert second.total == 3
    state = queries.board(db, BoardFilter(department="EEB", states=("acknowledged",)))
    assert _subjects(state) == ["S2"]
