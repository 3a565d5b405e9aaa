"""The departments table: seeded from subjects/departments.yaml, read by name.

subjects owns it (the supervising departments of the subject library); its first migration
is api's 0001 for history only: moving the file would run it again on existing databases.
Other packages read it through these functions, never by SQL of their own.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import psycopg
import yaml


def load_departments() -> list[dict[str, Any]]:
    text = (resources.files("subjects") / "departments.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, list):
        raise ValueError("subjects/departments.yaml must be a list of departments")
    return data


def seed_departments(conn: psycopg.Connection[Any]) -> int:
    """Upsert the list; returns how many departments it holds."""
    rows = load_departments()
    with conn.transaction():
        for d in rows:
            conn.execute(
                "INSERT INTO departments (code, name, name_zh, domains, retired)"
                " VALUES (%s, %s, %s, %s, %s)"
                " ON CONFLICT (code) DO UPDATE SET name = excluded.name,"
                " name_zh = excluded.name_zh, domains = excluded.domains,"
                " retired = excluded.retired",
                (d["code"], d["name"], d["name_zh"], list(d.get("domains", [])),
                 bool(d.get("retired", False))),
            )  # fmt: skip
        # Successors after every row exists (the reference may point forward in the list).
        for d in rows:
            conn.execute(
                "UPDATE departments SET replaced_by = %s WHERE code = %s",
                (d.get("replaced_by"), d["code"]),
            )
    return len(rows)


def department_names(conn: psycopg.Connection[Any]) -> dict[str, tuple[str, str]]:
    """code -> (English name, Chinese name) of every department."""
    rows = conn.execute("SELECT code, name, name_zh FROM departments").fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def department_codes(conn: psycopg.Connection[Any]) -> list[str]:
    """Every department code, retired ones included, in code order."""
    return [r[0] for r in conn.execute("SELECT code FROM departments ORDER BY code")]
