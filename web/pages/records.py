"""The notification outbox (with each failure's meaning and its next retry) and the audit
chain's verify result against its signed checkpoints."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from alerts import checkpoints, queries
from alerts.notify.failures import classify
from alerts.settings import AlertsSettings
from api.auth import Officer, Viewer
from api.context import Ctx
from web.pages.common import alert_service, pages

router = APIRouter(include_in_schema=False)


def _alerts_settings(ctx: Ctx) -> AlertsSettings | None:
    try:
        return alert_service(ctx).settings
    except HTTPException:
        return None  # alerting runs in another process: no retry limit or key known here


@router.get("/notifications", response_class=HTMLResponse)
def notifications_page(
    request: Request, ctx: Ctx, caller: Viewer, status: str | None = None
) -> HTMLResponse:
    with ctx.pool.connection() as conn:
        rows = queries.notifications(conn, caller.department, status or None)
    # The stored error is the channel's raw text; the page leads with what it means.
    failures = {n.id: classify(n.last_error) for n in rows if n.last_error}
    settings = _alerts_settings(ctx)
    return pages(ctx).render(
        request, "notifications.html", caller, active="notifications", rows=rows,
        status=status or "", failures=failures,
        max_attempts=settings.max_attempts if settings else None,
    )  # fmt: skip


@router.post("/notifications/{notification_id}/retry")
def retry(notification_id: int, ctx: Ctx, caller: Officer) -> Response:
    """Send a dead delivery again now; the retry is in the audit chain with who asked."""
    if not alert_service(ctx).retry_notification(caller, notification_id):
        raise HTTPException(404, f"notification {notification_id} not found or not dead")
    return Response(status_code=204, headers={"HX-Refresh": "true"})


def _public_key(settings: AlertsSettings | None) -> str | None:
    key = settings.audit_signing_key if settings else None
    if key is None:
        return None
    try:
        return checkpoints.public_hex(checkpoints.signing_key(key.get_secret_value()))
    except checkpoints.CheckpointError:
        return None  # a malformed key: `offsite audit checkpoint` names the problem


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, ctx: Ctx, caller: Viewer) -> HTMLResponse:
    """What `offsite audit verify` checks (every row, every stored checkpoint and its
    signature), said in the page's language, including when nothing is signed yet."""
    public_key = _public_key(_alerts_settings(ctx))
    with ctx.pool.connection() as conn:
        found = checkpoints.verify_signed(conn, public_key=public_key)
    return pages(ctx).render(
        request, "audit.html", caller, active="audit", found=found, result=found.chain,
        key_configured=public_key is not None, checked_at=pages(ctx).clock.now(),
    )  # fmt: skip
