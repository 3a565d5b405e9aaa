"""The dead_letters table's one writer: a refused message (or part of one) with its reason."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg


@dataclass(frozen=True, slots=True)
class StoredLetter:
    """What the table keeps of a refused message; `reason` is the refusing package's code."""

    topic: str
    device_id: str | None
    reason: str
    detail: str
    payload: bytes


def store(conn: psycopg.Connection[Any], letters: Iterable[StoredLetter], payload_cap: int) -> None:
    """COPY the letters in: the payload kept up to `payload_cap` bytes, its size and SHA-256
    always, so an integrator can match a letter to what they sent."""
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY dead_letters (topic, device_id, reason, detail, payload,"
            " payload_size, payload_sha256) FROM STDIN"
        ) as copy,
    ):
        for d in letters:
            copy.write_row(
                (
                    d.topic[:512],
                    d.device_id,
                    d.reason,
                    d.detail[:2000],
                    d.payload[:payload_cap],
                    len(d.payload),
                    hashlib.sha256(d.payload).hexdigest(),
                )
            )
