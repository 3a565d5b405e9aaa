"""Read-only queries of the subject library for the workbench's map."""

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
