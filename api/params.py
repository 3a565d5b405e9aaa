"""Parameters shared by the routers: ids and offsets within PostgreSQL's bigint, times."""

from __future__ import annotations

from typing import Annotated

from fastapi import HTTPException, Path, Query

from core import clock

INT64_MAX = 2**63 - 1

# A bigserial id; larger numbers cannot name a row, and the database would refuse them.
Id = Annotated[int, Path(ge=1, le=INT64_MAX, description="row id")]
Offset = Annotated[int, Query(ge=0, le=INT64_MAX, description="rows to skip")]


def aware(t: clock.MaybeTime, name: str) -> clock.MaybeTime:
    """`t` when it carries a UTC offset (or is None); else 422 naming the parameter."""
    return clock.aware(t, name, _unprocessable)


def _unprocessable(name: str, why: str) -> HTTPException:
    return HTTPException(422, f"{name} {why}")
