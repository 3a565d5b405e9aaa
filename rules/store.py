"""The clue table: applies engine operations idempotently and reads state back at start."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg

from rules.bound import Bound
from rules.engine import ClueOp, OpenClue
from rules.evaluate import ClueAction, TriggerItem
from rules.kinds import entry_of
from rules.models import ClueEvent, ClueStatus, Severity
from rules.spec import Rule

_COLUMNS = (
    "id, fingerprint, rule_id, rule_version, title, department, severity, status, withdrawn,"
    " credit_code, device_ids, started_at, ended_at, updated_at, summary, evidence_ids,"
    " change_seq"
)
# Writers of clues serialise on this transaction lock before drawing change numbers, so the
# numbers commit in order and a consumer's watermark can never pass an uncommitted change.
CHANGE_LOCK_KEY = 0x0C1E5EC


def _ts(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def trigger_json(trigger: Sequence[TriggerItem]) -> list[dict[str, Any]]:
    """The trigger as stored: enough to find the readings again (device, metric, time)."""
    out = []
    for it in trigger:
        row: dict[str, Any] = {
            "time": _ts(it.t).isoformat(),
            "device_id": it.device_id,
            "metric": it.metric,
            "value": it.value,
        }
        if it.until is not None:
            row["until"] = _ts(it.until).isoformat()
        if it.evidence_id is not None:
            row["evidence_id"] = it.evidence_id
        out.append(row)
    return out


def summarize(b: Bound, started_at: float, trigger: Sequence[TriggerItem]) -> str:
    return b.entry.summary(b, started_at, trigger)


def _event(row: tuple[Any, ...]) -> ClueEvent:
    (cid, fp, rule_id, version, title, dept, sev, status, withdrawn, credit_code, devices,
     started, ended, updated, summary, evidence, seq) = row  # fmt: skip
    return ClueEvent(
        clue_id=cid,
        fingerprint=fp,
        rule_id=rule_id,
        rule_version=version,
        title=title,
        department=dept,
        severity=Severity(sev),
        status=ClueStatus(status),
        credit_code=credit_code,
        device_ids=tuple(devices),
        started_at=started,
        ended_at=ended,
        changed_at=updated,
        summary=("withdrawn: " + summary) if withdrawn else summary,
        evidence_ids=tuple(evidence),
        seq=seq,
    )


def _devices(b: Bound, trigger: Sequence[TriggerItem]) -> list[str]:
    seen = dict.fromkeys(it.device_id for it in trigger if it.device_id)
    return list(seen) or [b.scope]


def apply_ops(
    conn: psycopg.Connection[Any], ops: Sequence[ClueOp]
) -> list[tuple[ClueOp, ClueEvent]]:
    """Apply in one transaction; returns the operations that really changed a row."""
    events: list[tuple[ClueOp, ClueEvent]] = []
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (CHANGE_LOCK_KEY,))
        for op in ops:
            b = op.bound
            key = (b.fingerprint, _ts(op.started_at))
            if op.action in (ClueAction.OPEN, ClueAction.CLOSED):
                closed = op.action == ClueAction.CLOSED
                try:
                    # A savepoint: another open episode of this fingerprint (a second
                    # engine) must cost this one insert, not the whole batch.
                    with conn.transaction():
                        cur.execute(
                            "INSERT INTO clues (fingerprint, rule_id, rule_version, title,"
                            " department, severity, status, credit_code, device_ids,"
                            " started_at, ended_at, trigger, evidence_ids, summary) VALUES (%s,"
                            " %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s)"
                            " ON CONFLICT (fingerprint, started_at) DO UPDATE"
                            " SET withdrawn = false, status = excluded.status,"
                            " ended_at = excluded.ended_at, updated_at = now(),"
                            " change_seq = nextval('clues_change_seq')"
                            " WHERE clues.withdrawn RETURNING " + _COLUMNS,
                            (
                                b.fingerprint,
                                b.rule_id,
                                b.version,
                                b.title,
                                b.department,
                                b.severity.value,
                                "resolved" if closed else "firing",
                                b.credit_code,
                                _devices(b, op.trigger),
                                key[1],
                                _ts(op.at) if closed else None,
                                orjson.dumps(trigger_json(op.trigger)).decode(),
                                # A detection updated every few seconds repeats
                                # its snapshot id in the trigger: list each once.
                                list(
                                    dict.fromkeys(
                                        it.evidence_id for it in op.trigger if it.evidence_id
                                    )
                                ),
                                summarize(b, op.started_at, op.trigger),
                            ),
                        )
                except psycopg.errors.UniqueViolation:
                    continue
            elif op.action == ClueAction.RESOLVE:
                cur.execute(
                    "UPDATE clues SET status = 'resolved', ended_at = %s, updated_at = now(),"
                    " change_seq = nextval('clues_change_seq')"
                    " WHERE fingerprint = %s AND started_at = %s AND NOT withdrawn"
                    " AND (status = 'firing' OR ended_at IS DISTINCT FROM %s)"
                    " RETURNING " + _COLUMNS,
                    (_ts(op.at), *key, _ts(op.at)),
                )
            elif op.action == ClueAction.REOPEN:
                cur.execute(
                    "UPDATE clues SET status = 'firing', ended_at = NULL, updated_at = now(),"
                    " change_seq = nextval('clues_change_seq')"
                    " WHERE fingerprint = %s AND started_at = %s AND status = 'resolved'"
                    " AND NOT withdrawn AND NOT EXISTS (SELECT 1 FROM clues o"
                    " WHERE o.fingerprint = %s AND o.status = 'firing') RETURNING " + _COLUMNS,
                    (*key, b.fingerprint),
                )
            elif op.action == ClueAction.WITHDRAW:
                cur.execute(
                    "UPDATE clues SET withdrawn = true, status = 'resolved',"
                    " ended_at = COALESCE(ended_at, %s), updated_at = now(),"
                    " change_seq = nextval('clues_change_seq')"
                    " WHERE fingerprint = %s AND started_at = %s AND NOT withdrawn"
                    " RETURNING " + _COLUMNS,
                    (_ts(max(op.at, op.started_at)), *key),
                )
            else:
                raise ValueError(f"unknown clue operation {op.action!r}")
            row = cur.fetchone()
            if row is not None:
                events.append((op, _event(row)))
    return events


def changes_after(conn: psycopg.Connection[Any], seq: int, limit: int) -> list[ClueEvent]:
    """Committed clue changes past `seq`, in commit order (each clue in its latest state)."""
    rows = conn.execute(
        "SELECT " + _COLUMNS + " FROM clues WHERE change_seq > %s ORDER BY change_seq LIMIT %s",
        (seq, limit),
    ).fetchall()
    return [_event(row) for row in rows]


def clue_by_id(conn: psycopg.Connection[Any], clue_id: int) -> ClueEvent | None:
    row = conn.execute("SELECT " + _COLUMNS + " FROM clues WHERE id = %s", (clue_id,)).fetchone()
    return _event(row) if row is not None else None


def load_open(conn: psycopg.Connection[Any]) -> list[OpenClue]:
    rows = conn.execute(
        "SELECT fingerprint, started_at FROM clues WHERE status = 'firing'"
    ).fetchall()
    return [OpenClue(fp, started.timestamp()) for fp, started in rows]


def replay_metrics_of(rule: Rule) -> list[str] | None:
    """Metrics whose readings drive `rule`: None means every metric, [] none."""
    metrics: list[str] | None = entry_of(rule.kind).metrics(rule)
    return metrics
