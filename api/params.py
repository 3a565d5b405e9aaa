"""Parameter types shared by the routers: ids and offsets within PostgreSQL's bigint."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

INT64_MAX = 2**63 - 1

# A bigserial id; larger numbers cannot name a row, and the database would refuse them.
Id = Annotated[int, Path(ge=1, le=INT64_MAX, description="row id")]
Offset = Annotated[int, Query(ge=0, le=INT64_MAX, description="rows to skip")]
