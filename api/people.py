"""Personal accounts: create, look up, disable, reset; passwords hashed with argon2id."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from api.roles import Role, parse_role
from subjects.departments import department_codes

_LOGIN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD = 10
# The library's defaults follow RFC 9106's second recommended option (64 MiB, t=3).
_hasher = PasswordHasher()
# Verified against when the login is unknown, so both answers take the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

USER_COLUMNS = "id, login, name, department, role, disabled_at, created_at, oidc_issuer"


class PersonError(ValueError):
    """An account cannot be created or changed as asked; the message says why."""


@dataclass(frozen=True, slots=True)
class Person:
    id: int
    login: str
    name: str
    department: str
    role: Role
    disabled_at: datetime | None
    created_at: datetime
    oidc_issuer: str | None

    @property
    def active(self) -> bool:
        return self.disabled_at is None

    @property
    def single_sign_on(self) -> bool:
        """Signs in through the identity provider rather than with a password."""
        return self.oidc_issuer is not None


def person_from_row(row: tuple[Any, ...]) -> Person:
    return Person(row[0], row[1], row[2], row[3], Role(row[4]), row[5], row[6], row[7])


def generate_password() -> str:
    """A password to hand over once: 16 URL-safe characters (about 96 bits)."""
    return secrets.token_urlsafe(12)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_department(conn: psycopg.Connection[Any], department: str) -> None:
    codes = department_codes(conn)
    if department not in codes:
        raise PersonError(f"department {department!r} is unknown; known: {', '.join(codes)}")


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise PersonError(f"a password needs at least {MIN_PASSWORD} characters")


def create_person(
    conn: psycopg.Connection[Any],
    login: str,
    name: str,
    department: str,
    role: str,
    password: str | None,
    oidc: tuple[str, str] | None = None,
) -> Person:
    """Create an account; `password` None leaves it for single sign-on only."""
    if not _LOGIN.match(login):
        raise PersonError(
            f"login {login!r} must be 2-64 lower-case letters, digits, '.', '_' or '-'"
        )
    if not name.strip() or len(name) > 100:
        raise PersonError("a display name of 1-100 characters is required")
    role_ = parse_role(role, PersonError)
    check_department(conn, department)
    if password is not None:
        _check_password(password)
    issuer, subject = oidc if oidc is not None else (None, None)
    try:
        # A savepoint, so a taken login leaves the caller's transaction usable.
        with conn.transaction():
            row = conn.execute(
                "INSERT INTO users (login, name, department, role, password_hash,"
                " password_changed_at, oidc_issuer, oidc_subject)"
                " VALUES (%s, %s, %s, %s, %s, CASE WHEN %s THEN now() END, %s, %s)"
                f" RETURNING {USER_COLUMNS}",
                (
                    login,
                    name.strip(),
                    department,
                    role_.value,
                    hash_password(password) if password is not None else None,
                    password is not None,
                    issuer,
                    subject,
                ),
            ).fetchone()
    except psycopg.errors.UniqueViolation:
        raise PersonError(f"login {login!r} is taken") from None
    assert row is not None
    return person_from_row(row)


def by_login(conn: psycopg.Connection[Any], login: str) -> Person | None:
    row = conn.execute(f"SELECT {USER_COLUMNS} FROM users WHERE login = %s", (login,)).fetchone()
    return None if row is None else person_from_row(row)


def by_id(conn: psycopg.Connection[Any], user_id: int) -> Person | None:
    row = conn.execute(f"SELECT {USER_COLUMNS} FROM users WHERE id = %s", (user_id,)).fetchone()
    return None if row is None else person_from_row(row)


def by_oidc(conn: psycopg.Connection[Any], issuer: str, subject: str) -> Person | None:
    row = conn.execute(
        f"SELECT {USER_COLUMNS} FROM users WHERE oidc_issuer = %s AND oidc_subject = %s",
        (issuer, subject),
    ).fetchone()
    return None if row is None else person_from_row(row)


def update_from_claims(
    conn: psycopg.Connection[Any], user_id: int, name: str, department: str, role: Role
) -> Person:
    """The provider is the source of truth for a single-sign-on account's name and role."""
    check_department(conn, department)
    row = conn.execute(
        "UPDATE users SET name = %s, department = %s, role = %s WHERE id = %s"
        f" RETURNING {USER_COLUMNS}",
        (name, department, role.value, user_id),
    ).fetchone()
    assert row is not None
    return person_from_row(row)


def verify(conn: psycopg.Connection[Any], login: str, password: str) -> Person | None:
    """The active person with this login and password, else None (which one failed is not said)."""
    row = conn.execute(
        f"SELECT {USER_COLUMNS}, password_hash FROM users WHERE login = %s", (login,)
    ).fetchone()
    stored = row[-1] if row is not None and row[-1] else _DUMMY_HASH
    try:
        _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if row is None or not row[-1]:
        return None
    person = person_from_row(row[:-1])
    if not person.active:
        return None
    if _hasher.check_needs_rehash(stored):
        conn.execute(
            "UPDATE users SET password_hash = %s WHERE id = %s",
            (hash_password(password), person.id),
        )
    return person


def list_people(conn: psycopg.Connection[Any], department: str | None = None) -> list[Person]:
    """Everyone, or the people of one department."""
    rows = conn.execute(
        f"SELECT {USER_COLUMNS} FROM users WHERE %(dept)s::text IS NULL OR department = %(dept)s"
        " ORDER BY department, login",
        {"dept": department},
    ).fetchall()
    return [person_from_row(r) for r in rows]


def count_people(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM users").fetchone()
    return int(row[0]) if row else 0


def disable(conn: psycopg.Connection[Any], login: str) -> Person:
    """Disable the account and end its sessions (open live streams notice within seconds)."""
    row = conn.execute(
        "UPDATE users SET disabled_at = coalesce(disabled_at, now()) WHERE login = %s"
        f" RETURNING {USER_COLUMNS}",
        (login,),
    ).fetchone()
    return _end_sessions(conn, _found(row, login))


def enable(conn: psycopg.Connection[Any], login: str) -> Person:
    row = conn.execute(
        f"UPDATE users SET disabled_at = NULL WHERE login = %s RETURNING {USER_COLUMNS}",
        (login,),
    ).fetchone()
    return person_from_row(_found(row, login))


def reset_password(conn: psycopg.Connection[Any], login: str, password: str) -> Person:
    """Set a new password and end the account's sessions."""
    _check_password(password)
    row = conn.execute(
        "UPDATE users SET password_hash = %s, password_changed_at = now() WHERE login = %s"
        f" RETURNING {USER_COLUMNS}",
        (hash_password(password), login),
    ).fetchone()
    return _end_sessions(conn, _found(row, login))


def _found(row: tuple[Any, ...] | None, login: str) -> tuple[Any, ...]:
    if row is None:
        raise PersonError(f"no account has the login {login!r}")
    return row


def _end_sessions(conn: psycopg.Connection[Any], row: tuple[Any, ...]) -> Person:
    """The person of a users row, with every open session of theirs ended."""
    conn.execute(
        "UPDATE sessions SET ended_at = now() WHERE user_id = %s AND ended_at IS NULL", (row[0],)
    )
    return person_from_row(row)


FIRST_ADMIN_LOGIN = "admin"
PLATFORM_DEPARTMENT = "BDB"


def create_first_admin(conn: psycopg.Connection[Any]) -> tuple[Person, str] | None:
    """On a site with no accounts, a platform admin `admin` and its password (to print once).

    None when anyone has an account already, or another instance created it first.
    """
    if count_people(conn) > 0:
        return None
    password = generate_password()
    try:
        person = create_person(
            conn, FIRST_ADMIN_LOGIN, "平台管理员", PLATFORM_DEPARTMENT, "platform_admin", password
        )
    except PersonError:
        return None  # another instance starting at the same time won
    return person, password


def change_password(conn: psycopg.Connection[Any], login: str, current: str, new: str) -> Person:
    """A person's own change: the current password must be right; every session then ends."""
    if verify(conn, login, current) is None:
        raise PersonError("the current password is wrong")
    if new == current:
        raise PersonError("the new password must differ from the current one")
    return reset_password(conn, login, new)
