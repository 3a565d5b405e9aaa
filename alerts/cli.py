"""`offsite audit verify`: walk the audit chain and print the first broken link."""

from __future__ import annotations

import sys
from typing import Any, TextIO

import psycopg
from psycopg_pool import ConnectionPool

from alerts.audit import VerifyResult, verify


def verify_command(
    target: ConnectionPool | psycopg.Connection[Any], out: TextIO | None = None
) -> int:
    """Print the outcome; 0 when the chain holds, 1 when a link is broken."""
    stream = out if out is not None else sys.stdout
    result: VerifyResult
    if isinstance(target, ConnectionPool):
        with target.connection() as conn:
            result = verify(conn)
    else:
        result = verify(target)
    if result.ok:
        print(f"audit chain ok: {result.checked} rows verified", file=stream)
        return 0
    print(
        f"audit chain BROKEN at seq {result.broken_seq}: {result.reason} "
        f"({result.checked} rows before it verified)",
        file=stream,
    )
    return 1
