"""Dry run: what clues a rule would have raised over stored readings (same evaluator)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any

import psycopg

from rules.engine import Engine
from rules.episodes import EpisodeBook
from rules.settings import CreditModifier
from rules.spec import Rule
from rules.store import replay_metrics_of, stream_readings, summarize, trigger_json
from subjects.models import DeviceDirectory, Grade


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
    device_ids: list[str] | None = None,
) -> list[DryClue]:
    """Replay stored readings in event order through a fresh engine holding only `rule`.

    Absence and detection-clear rules are driven by a tick at each batch's last reading
    time and at `until`, so their timing is approximate to the batch (1,000 readings).
    """
    engine = Engine([rule], directory, credit, lateness_s)
    book = EpisodeBook()
    metrics = replay_metrics_of(rule)
    readings = (
        stream_readings(conn, metrics, since, until, device_ids) if metrics != [] else iter(())
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
