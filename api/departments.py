"""Seeds the departments table from api/departments.yaml."""

from __future__ import annotations

from importlib import resources
from typing import Any

import psycopg
import yaml


def load_departments() -> list[dict[str, Any]]:
    text = (resources.files("api") / "departments.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, list):
        raise ValueError("api/departments.yaml must be a list of departments")
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
