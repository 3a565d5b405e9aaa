"""API keys: stored hashed, bound to a department and a role; checked on every /api/v1 route."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import psycopg
from fastapi import Depends, HTTPException, Request, status

from api.context import ApiContext, get_context

KEY_PREFIX = "osk_"


class Role(StrEnum):
    VIEWER = "viewer"
    OFFICER = "officer"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return {"viewer": 0, "officer": 1, "admin": 2}[self.value]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: every read and write is scoped to `department`."""

    key_id: int
    department: str
    role: Role


class KeyRequestError(ValueError):
    """A key cannot be created as asked (unknown department, bad role)."""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(conn: psycopg.Connection[Any], department: str, role: str, name: str = "") -> str:
    """Create a key and return it in clear; only its hash is stored."""
    try:
        role_ = Role(role)
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise KeyRequestError(f"role {role!r} is not one of {roles}") from None
    known = conn.execute("SELECT 1 FROM departments WHERE code = %s", (department,)).fetchone()
    if known is None:
        codes = [r[0] for r in conn.execute("SELECT code FROM departments ORDER BY code")]
        raise KeyRequestError(f"department {department!r} is unknown; known: {', '.join(codes)}")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO api_keys (key_hash, prefix, department, role, name)"
        " VALUES (%s, %s, %s, %s, %s)",
        (hash_key(key), key[:10], department, role_.value, name),
    )
    return key


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header and header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.headers.get("x-api-key")


def authenticate(request: Request, ctx: Annotated[ApiContext, Depends(get_context)]) -> Caller:
    key = _presented_key(request)
    if not key:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    with ctx.pool.connection() as conn:
        row = conn.execute(
            "SELECT id, department, role FROM api_keys WHERE key_hash = %s AND revoked_at IS NULL",
            (hash_key(key),),
        ).fetchone()
    if row is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "the API key is unknown or revoked",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Caller(key_id=row[0], department=row[1], role=Role(row[2]))


def require(role: Role) -> Any:
    """A dependency that admits callers with at least `role`."""

    def check(caller: Annotated[Caller, Depends(authenticate)]) -> Caller:
        if caller.role.rank < role.rank:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"this needs the {role.value} role; the key has {caller.role.value}",
            )
        return caller

    return Depends(check)


Viewer = Annotated[Caller, require(Role.VIEWER)]
Officer = Annotated[Caller, require(Role.OFFICER)]
Admin = Annotated[Caller, require(Role.ADMIN)]
