"""API keys for machines: stored hashed, bound to a department and a role."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from api.people import PersonError, check_department
from api.roles import Role, parse_role

KEY_PREFIX = "osk_"


class KeyRequestError(ValueError):
    """A key cannot be created or changed as asked (unknown department, bad role, no such key)."""


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: int
    prefix: str
    department: str
    role: Role
    name: str
    created_at: datetime
    revoked_at: datetime | None


def hash_key(key: str) -> str:
    # Keys are 32 random bytes, so a fast hash is enough and a lookup is one index probe.
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(conn: psycopg.Connection[Any], department: str, role: str, name: str = "") -> str:
    """Create a key and return it in clear; only its hash is stored."""
    role_ = parse_role(role, KeyRequestError)
    try:
        check_department(conn, department)
    except PersonError as err:
        raise KeyRequestError(str(err)) from None
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO api_keys (key_hash, prefix, department, role, name)"
        " VALUES (%s, %s, %s, %s, %s)",
        (hash_key(key), key[:10], department, role_.value, name),
    )
    return key


_COLUMNS = "id, prefix, department, role, name, created_at, revoked_at"


def _record(row: tuple[Any, ...]) -> KeyRecord:
    return KeyRecord(row[0], row[1], row[2], Role(row[3]), row[4], row[5], row[6])


def find_active(conn: psycopg.Connection[Any], key: str) -> KeyRecord | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = %s AND revoked_at IS NULL",
        (hash_key(key),),
    ).fetchone()
    return None if row is None else _record(row)


def is_active(conn: psycopg.Connection[Any], key_id: int) -> bool:
    row = conn.execute(
        "SELECT 1 FROM api_keys WHERE id = %s AND revoked_at IS NULL", (key_id,)
    ).fetchone()
    return row is not None


def list_keys(conn: psycopg.Connection[Any]) -> list[KeyRecord]:
    return [_record(r) for r in conn.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY id")]


def revoke_key(conn: psycopg.Connection[Any], key_id: int) -> KeyRecord:
    """Revoke a key (open live streams of it end within seconds); revoking twice is harmless."""
    row = conn.execute(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = %s"
        f" RETURNING {_COLUMNS}",
        (key_id,),
    ).fetchone()
    if row is None:
        raise KeyRequestError(f"no API key has the id {key_id}")
    return _record(row)
