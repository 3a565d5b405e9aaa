"""`offsite audit ...`: verify the chain against its signed checkpoints, sign, export."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

import psycopg
from psycopg_pool import ConnectionPool

from alerts import checkpoints
from alerts.audit import VerifyResult
from alerts.checkpoints import Checkpoint


def verify_command(
    target: ConnectionPool | psycopg.Connection[Any],
    out: TextIO | None = None,
    exported: Sequence[Checkpoint] = (),
    public_key: str | None = None,
) -> int:
    """Print the outcome; 0 when the chain holds, 1 when a link or a checkpoint is broken.

    The chain is checked against every checkpoint stored in the database and every one in
    `exported` (a copy kept off the box). With `public_key` (the configured signing key's),
    each signature must hold for it; without, for the key the checkpoint names.
    """
    stream = out if out is not None else sys.stdout
    if isinstance(target, ConnectionPool):
        with target.connection() as conn:
            return _verify(conn, stream, exported, public_key)
    return _verify(target, stream, exported, public_key)


def _verify(
    conn: psycopg.Connection[Any],
    stream: TextIO,
    exported: Sequence[Checkpoint],
    public_key: str | None,
) -> int:
    found = checkpoints.verify_signed(conn, exported, public_key)
    if found.broken is checkpoints.CheckpointBreak.BAD_SIGNATURE:
        print(
            f"audit chain BROKEN: the checkpoint of seq {found.broken_seq} is not signed by"
            f" {'the configured key' if public_key else 'the key it names'}",
            file=stream,
        )
        return 1
    if found.broken is checkpoints.CheckpointBreak.DISAGREE:
        print(
            f"audit chain BROKEN: two signed checkpoints of seq {found.broken_seq} disagree",
            file=stream,
        )
        return 1
    result: VerifyResult | None = found.chain
    assert result is not None
    if result.ok:
        latest = found.latest.seq if found.latest else 0
        print(
            f"audit chain ok: {result.checked} rows verified, {found.checkpoints} signed"
            f" checkpoints hold (latest at seq {latest})",
            file=stream,
        )
        if public_key is None and found.checkpoints:
            print(
                "note: no signing key configured here; signatures were checked against the"
                " key each checkpoint names",
                file=stream,
            )
        return 0
    print(
        f"audit chain BROKEN at seq {result.broken_seq}: {result.reason} "
        f"({result.checked} rows before it verified)",
        file=stream,
    )
    return 1


def checkpoint_command(conn: psycopg.Connection[Any], key_text: str, out: TextIO) -> int:
    key = checkpoints.signing_key(key_text)
    cp = checkpoints.sign_head(conn, key, datetime.now(UTC))
    if cp is None:
        print("nothing to sign: the chain is empty or its head is signed already", file=out)
    else:
        print(f"signed the audit chain's head: seq {cp.seq}, hash {cp.hash}", file=out)
    return 0


def export_command(conn: psycopg.Connection[Any], after_seq: int, out: TextIO) -> int:
    for cp in checkpoints.stored(conn, after_seq):
        print(cp.to_json(), file=out)
    return 0


def verify_export_command(lines: Sequence[str], public_key: str, out: TextIO) -> int:
    """Check an exported file on its own, off the box: 0 when every signature holds."""
    found = checkpoints.read_export(lines)
    problems = checkpoints.check_export(found, public_key)
    if problems:
        for p in problems:
            print(f"BROKEN: {p}", file=out)
        return 1
    latest = found[-1].seq if found else 0
    print(f"{len(found)} checkpoints hold for key {public_key[:16]}... (latest seq {latest})",
          file=out)  # fmt: skip
    return 0
