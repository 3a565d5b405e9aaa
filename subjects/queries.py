"""Read-only queries of the subject library: the map, and who supervises what now."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg


@dataclass(frozen=True, slots=True)
class Location:
    credit_code: str
    name: str
    grid: str
    latitude: float | None
    longitude: float | None


def locations(conn: psycopg.Connection[Any], codes: Sequence[str]) -> list[Location]:
    """Name, grid and coordinates (if recorded) of the subjects named."""
    rows = conn.execute(
        "SELECT credit_code, name, grid, latitude, longitude FROM subjects"
        " WHERE credit_code = ANY(%s) ORDER BY name",
        (list(codes),),
    ).fetchall()
    return [Location(*r) for r in rows]


def current_period(alias: str = "", now: str = "now()") -> str:
    """SQL: a supervision period (`since`, `until`) is current — begun and not ended at
    `now` (the database clock, or a placeholder such as `%(now)s` for an injected clock).

    The one definition of "currently supervised"; the view `subject_current_departments`
    (migration 0001) states the same in SQL for the queries that join it.
    """
    p = f"{alias}." if alias else ""
    return f"{p}since <= {now} AND ({p}until IS NULL OR {p}until > {now})"


def device_unbound(col: str) -> str:
    """SQL predicate over a device id column: the device is bound to no subject."""
    return f"NOT EXISTS (SELECT 1 FROM device_bindings b WHERE b.device_id = {col})"


def device_visible(col: str) -> str:
    """SQL predicate over a device id column, with named parameters `dept` and `platform`.

    A department sees the devices bound to subjects it supervises now, department admins
    included; the platform admin also sees unbound devices (and rows naming no device),
    because binding new devices is their job.
    """
    return (
        "(EXISTS (SELECT 1 FROM device_bindings b"
        " JOIN subject_departments sd ON sd.credit_code = b.credit_code"
        f" WHERE b.device_id = {col} AND sd.department = %(dept)s AND {current_period('sd')})"
        f" OR (%(platform)s AND ({col} IS NULL OR {device_unbound(col)})))"
    )
