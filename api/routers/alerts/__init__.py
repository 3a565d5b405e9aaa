"""/api/v1 routes of the alerts package, one module a job; `router` includes them all."""

from fastapi import APIRouter

from api.routers.alerts import draws, items, notifications, silences, stream, tasks

__all__ = ["router"]

router = APIRouter()
for _module in (items, tasks, silences, notifications, draws, stream):
    router.include_router(_module.router)
