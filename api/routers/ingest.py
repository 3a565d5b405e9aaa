"""/api/v1 routes over ingested data: devices, readings and dead letters."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["ingest"])
