"""Server-side sessions of signed-in people: the cookie holds a random token, the table its hash."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg

from api.people import USER_COLUMNS, Person, person_from_row


@dataclass(frozen=True, slots=True)
class Session:
    id: int
    person: Person
    csrf_token: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(
    conn: psycopg.Connection[Any],
    person: Person,
    absolute: timedelta,
    ip: str = "",
    user_agent: str = "",
) -> tuple[str, Session]:
    """Start a session; returns the cookie value (shown to nobody else) and the session."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    row = conn.execute(
        "INSERT INTO sessions (token_hash, user_id, csrf_token, expires_at, ip, user_agent)"
        " VALUES (%s, %s, %s, now() + %s, %s, %s) RETURNING id",
        (_hash(token), person.id, csrf, absolute, ip, user_agent[:300]),
    ).fetchone()
    assert row is not None
    return token, Session(row[0], person, csrf)


def resume(conn: psycopg.Connection[Any], token: str, idle: timedelta) -> Session | None:
    """The live session of an active person with this cookie value, marked as used now."""
    cols = ", ".join(f"u.{c.strip()}" for c in USER_COLUMNS.split(","))
    row = conn.execute(
        "UPDATE sessions s SET last_seen_at = now() FROM users u"
        " WHERE s.token_hash = %s AND u.id = s.user_id AND s.ended_at IS NULL"
        " AND s.expires_at > now() AND s.last_seen_at > now() - %s AND u.disabled_at IS NULL"
        f" RETURNING s.id, s.csrf_token, {cols}",
        (_hash(token), idle),
    ).fetchone()
    if row is None:
        return None
    return Session(row[0], person_from_row(row[2:]), row[1])


def is_live(conn: psycopg.Connection[Any], session_id: int) -> bool:
    """Still signed in? (An open stream asks this every few seconds without touching it.)"""
    row = conn.execute(
        "SELECT 1 FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = %s"
        " AND s.ended_at IS NULL AND s.expires_at > now() AND u.disabled_at IS NULL",
        (session_id,),
    ).fetchone()
    return row is not None


def end(conn: psycopg.Connection[Any], session_id: int) -> None:
    conn.execute(
        "UPDATE sessions SET ended_at = now() WHERE id = %s AND ended_at IS NULL", (session_id,)
    )
