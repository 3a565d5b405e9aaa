"""Dry run: what clues a rule would have raised over stored readings (same evaluator)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any

import psycopg

from ingest.models import Reading
from ingest.replay import stream_readings
from rules.engine import Engine
from rules.episodes import EpisodeBook
from rules.settings import CreditModifier
from rules.spec import Rule
from rules.store import replay_metrics_of, summarize, trigger_json
from subjects.models import DeviceContext, DeviceDirectory, Grade


class DepartmentDirectory:
    """The bindings one department may see: devices on subjects it supervises now.

    A dry run may read only what its caller may read; another department's subjects (credit
    code, tags, permit values) and unbound devices look to it as if they did not exist.
    """

    def __init__(self, inner: DeviceDirectory, department: str) -> None:
        self._inner = inner
        self._department = department

    def context(self, device_id: str) -> DeviceContext | None:
        ctx = self._inner.context(device_id)
        if ctx is None or self._department not in ctx.departments:
            return None
        return ctx


def _visible(readings: Iterator[Reading], directory: DepartmentDirectory) -> Iterator[Reading]:
    seen: dict[str, bool] = {}
    for r in readings:
        ok = seen.get(r.device_id)
        if ok is None:
            ok = seen[r.device_id] = directory.context(r.device_id) is not None
        if ok:
            yield r


@dataclass(frozen=True, slots=True)
class DryClue:
    """A clue the rule would have raised."""

    fingerprint: str
    rule_id: str
    severity: str
    credit_code: str | None
    device_ids: tuple[str, ...]
    started_at: datetime
    ended_at: datetime | None
    summary: str
    trigger: list[dict[str, Any]]


def dry_run(
    conn: psycopg.Connection[Any],
    rule: Rule,
    directory: DeviceDirectory,
    credit: Mapping[Grade, CreditModifier],
    lateness_s: float,
    since: datetime,
    until: datetime,
    department: str,
    device_ids: list[str] | None = None,
) -> list[DryClue]:
    """Replay `department`'s stored readings in event order through an engine holding `rule`.

    Only devices bound to a subject `department` supervises now take part.

    Absence and detection-clear rules are driven by a tick at each batch's last reading
    time and at `until`, so their timing is approximate to the batch (1,000 readings).
    """
    scoped = DepartmentDirectory(directory, department)
    engine = Engine([rule], scoped, credit, lateness_s)
    book = EpisodeBook()
    metrics = replay_metrics_of(rule)
    readings = _visible(
        stream_readings(conn, metrics, since, until, device_ids) if metrics != [] else iter(()),
        scoped,
    )
    while batch := list(islice(readings, 1000)):
        book.apply(engine.on_readings(batch))
        book.apply(engine.tick(batch[-1].time.timestamp()))
    book.apply(engine.tick(until.timestamp()))
    out = []
    for ep in book.standing():
        b = ep.op.bound
        out.append(
            DryClue(
                fingerprint=ep.fingerprint,
                rule_id=b.rule_id,
                severity=b.severity.value,
                credit_code=b.credit_code,
                device_ids=tuple(dict.fromkeys(it.device_id for it in ep.trigger)) or (b.scope,),
                started_at=datetime.fromtimestamp(ep.started_at, since.tzinfo),
                ended_at=(
                    datetime.fromtimestamp(ep.ended_at, since.tzinfo) if ep.ended_at else None
                ),
                summary=summarize(b, ep.started_at, ep.trigger),
                trigger=trigger_json(ep.trigger),
            )
        )
    return out
