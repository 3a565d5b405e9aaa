"""The notification outbox of the caller's alerts, and retrying a dead delivery."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query

from alerts import queries
from api.auth import Officer, Viewer
from api.context import Ctx
from api.params import Id
from api.routers.alerts.common import service_of
from api.routers.alerts.models import (
    NotificationOut,
)

router = APIRouter(prefix="/api/v1", tags=["alerts"])


@router.get("/notifications", response_model=list[NotificationOut])
def list_notifications(
    ctx: Ctx,
    caller: Viewer,
    status: Literal["pending", "sent", "dead", "suppressed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[NotificationOut]:
    """The outbox for the caller's alerts: what was sent, is retrying, is dead or muted."""
    with ctx.pool.connection() as conn:
        rows = queries.notifications(conn, caller.department, status, limit)
    return [NotificationOut.model_validate(r, from_attributes=True) for r in rows]


@router.post("/notifications/{notification_id}/retry", status_code=204)
def retry_notification(notification_id: Id, ctx: Ctx, caller: Officer) -> None:
    """Queue a dead delivery of the caller's alert again now; audited with the caller."""
    if not service_of(ctx).retry_notification(caller, notification_id):
        raise HTTPException(404, f"notification {notification_id} not found or not dead")
