"""The append-only, hash-chained audit log (全过程记录) and its verification."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import Enum, StrEnum
from typing import Any

import psycopg
from psycopg import pq

GENESIS = "0" * 64
# All appends, from every process, take this transaction-scoped lock so seq and prev_hash
# form one line; it is released at commit or rollback.
AUDIT_LOCK = 0x0FF5A0D17


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One state change to record: who did what to which entity, with its details."""

    actor: str
    entity: str
    entity_id: str
    action: str
    payload: Mapping[str, Any] = field(default_factory=dict)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    raise TypeError(f"audit payload value of type {type(value).__name__} is not JSON-ready")


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 text, times as UTC with microseconds: one text per value."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default
    )


def format_time(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("audit times must carry a time zone")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def row_hash(
    seq: int,
    at: datetime,
    actor: str,
    entity: str,
    entity_id: str,
    action: str,
    payload: str,
    prev_hash: str,
) -> str:
    """sha256 of the canonical form of a row, its predecessor's hash included."""
    form = canonical_json(
        [seq, format_time(at), actor, entity, entity_id, action, payload, prev_hash]
    )
    return hashlib.sha256(form.encode()).hexdigest()


def append(
    conn: psycopg.Connection[Any], records: Sequence[AuditRecord], at: datetime
) -> list[int]:
    """Append `records` inside the caller's open transaction; returns their seq numbers.

    Call it last in a transaction: it takes the chain's lock, and a transaction that then
    waited for another lock could deadlock with one that holds it.
    """
    if not records:
        return []
    if conn.info.transaction_status != pq.TransactionStatus.INTRANS:
        raise RuntimeError(
            "audit.append must run inside a transaction (the lock is per transaction)"
        )
    at = at.astimezone(UTC)
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (AUDIT_LOCK,))
    last = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (int(last[0]), str(last[1])) if last else (0, GENESIS)
    rows = []
    for r in records:
        seq += 1
        payload = canonical_json(dict(r.payload))
        h = row_hash(seq, at, r.actor, r.entity, r.entity_id, r.action, payload, prev)
        rows.append((seq, at, r.actor, r.entity, r.entity_id, r.action, payload, prev, h))
        prev = h
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO audit_log (seq, at, actor, entity, entity_id, action, payload,"
            " prev_hash, hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )
    return [row[0] for row in rows]


class Break(StrEnum):
    """How the chain broke: a stable code for pages and catalogs (`reason` says it in full)."""

    MISSING = "missing"
    PREV_MISMATCH = "prev_mismatch"
    CONTENTS = "contents"
    REWRITTEN = "rewritten"
    TRUNCATED = "truncated"


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of walking the chain: ok, or the first broken link and why."""

    ok: bool
    checked: int
    broken_seq: int | None = None
    reason: str = ""
    code: Break | None = None


def verify(
    conn: psycopg.Connection[Any], batch: int = 5000, anchors: Mapping[int, str] | None = None
) -> VerifyResult:
    """Walk the whole chain in seq order and report the first row that does not hold.

    `anchors` maps seq to the hash a signed checkpoint recorded for it: a row whose hash
    differs was rewritten (the chain recomputed from there), and an anchor past the last
    row means the tail was cut off. Either breaks the chain.
    """
    pinned = dict(anchors or {})
    expected_seq, prev, checked = 1, GENESIS, 0
    with conn.transaction(), conn.cursor(name="audit_verify") as cur:
        cur.itersize = batch
        cur.execute(
            "SELECT seq, at, actor, entity, entity_id, action, payload, prev_hash, hash"
            " FROM audit_log ORDER BY seq"
        )
        for seq, at, actor, entity, entity_id, action, payload, prev_hash, stored in cur:
            if seq != expected_seq:
                return VerifyResult(
                    False,
                    checked,
                    expected_seq,
                    f"seq {expected_seq} is missing (next is {seq})",
                    Break.MISSING,
                )
            if prev_hash != prev:
                return VerifyResult(
                    False,
                    checked,
                    seq,
                    f"seq {seq}: prev_hash does not match the hash of seq {seq - 1}",
                    Break.PREV_MISMATCH,
                )
            recomputed = row_hash(seq, at, actor, entity, entity_id, action, payload, prev_hash)
            if recomputed != stored:
                return VerifyResult(
                    False,
                    checked,
                    seq,
                    f"seq {seq}: contents do not match its hash",
                    Break.CONTENTS,
                )
            if seq in pinned and pinned.pop(seq) != stored:
                return VerifyResult(
                    False,
                    checked,
                    seq,
                    f"seq {seq}: its hash differs from the signed checkpoint: the chain was"
                    " rewritten and recomputed",
                    Break.REWRITTEN,
                )
            prev, expected_seq, checked = stored, seq + 1, checked + 1
    if pinned:
        first = min(pinned)
        return VerifyResult(
            False,
            checked,
            first,
            f"a signed checkpoint covers seq {first} but the chain ends at seq"
            f" {expected_seq - 1}: its tail was cut off",
            Break.TRUNCATED,
        )
    return VerifyResult(True, checked)
