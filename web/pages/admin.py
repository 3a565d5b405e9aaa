"""Rules and their dry runs, and silences (the outbox and the audit chain: records.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from alerts import queries
from alerts.silences import Matcher
from alerts.silences import fetch as fetch_silences
from api.auth import Officer, Viewer
from api.context import Ctx
from rules.dryrun import DryClue, dry_run
from rules.service import RuleService
from web.pages.common import Refused, alert_service, attempt, pages

router = APIRouter(include_in_schema=False)
SILENCE_HOURS = (1, 4, 24, 72, 168)


@router.get("/rules", response_class=HTMLResponse)
def rules_page(request: Request, ctx: Ctx, caller: Viewer) -> HTMLResponse:
    try:
        ruleset = ctx.get(RuleService).ruleset
    except LookupError as err:
        raise HTTPException(503, str(err)) from err
    return pages(ctx).render(request, "rules.html", caller, active="rules", rules=ruleset.rules)


@router.get("/silences", response_class=HTMLResponse)
def silences_page(request: Request, ctx: Ctx, caller: Viewer) -> HTMLResponse:
    with ctx.pool.connection() as conn:
        rows = fetch_silences(conn, caller.department)
        muted = queries.silenced_counts(conn, [r.id for r in rows])
    return pages(ctx).render(
        request, "silences.html", caller, active="silences", silences=rows, muted=muted
    )


def _target(target: str) -> tuple[Matcher, str]:
    kind, _, value = target.partition(":")
    if kind not in (Matcher.RULE.value, Matcher.SUBJECT.value) or not value:
        raise Refused("silence_target", f"target: cannot silence {target!r}")
    return Matcher(kind), value


def _rule_known(ctx: Ctx, matcher: Matcher, value: str) -> None:
    if matcher is Matcher.RULE:
        try:
            known = ctx.get(RuleService).ruleset.get(value) is not None
        except LookupError:
            known = True  # the rules run elsewhere; the silence service checks the value
        if not known:
            raise Refused("rule_unknown", f"value: rule {value!r} is not in the loaded rule pack")


@router.post("/silences/preview", response_class=HTMLResponse)
def silence_preview(
    request: Request,
    ctx: Ctx,
    caller: Officer,
    target: Annotated[str, Form()],
    hours: Annotated[int, Form(ge=1, le=24 * 90)],
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> HTMLResponse:
    """What the silence will mute (and for how long) before it is created."""
    try:
        matcher, value = _target(target)
        _rule_known(ctx, matcher, value)
        if not reason.strip():
            raise Refused("silence_reason_required", "reason: a silence needs a reason")
    except Refused as err:
        return pages(ctx).render(request, "flash.html", caller, error=err)
    now = pages(ctx).clock.now()
    with ctx.pool.connection() as conn:
        affected = queries.open_alerts_matching(conn, caller.department, matcher.value, value)
    return pages(ctx).render(
        request, "silence_preview.html", caller,
        matcher=matcher.value, value=value, hours=hours, reason=reason.strip(),
        starts=now, ends=now + timedelta(hours=hours), affected=affected,
    )  # fmt: skip


@router.post("/silences")
def create_silence(
    request: Request,
    ctx: Ctx,
    caller: Officer,
    matcher: Annotated[Matcher, Form()],
    value: Annotated[str, Form(min_length=1, max_length=200)],
    hours: Annotated[int, Form(ge=1, le=24 * 90)],
    reason: Annotated[str, Form(min_length=1, max_length=2000)],
) -> Response:
    service = alert_service(ctx)
    now = pages(ctx).clock.now()
    try:
        _rule_known(ctx, matcher, value)
        attempt(
            lambda: service.create_silence(
                caller, matcher, value, now, now + timedelta(hours=hours), reason
            )
        )
    except Refused as err:
        return pages(ctx).render(request, "flash.html", caller, error=err)
    return Response(status_code=204, headers={"HX-Redirect": "/silences"})


DRY_RUN_HOURS = (6, 24, 72, 168)


@router.get("/rules/{rule_id}/dry-run", response_class=HTMLResponse)
def dry_run_page(
    rule_id: str, request: Request, ctx: Ctx, caller: Viewer, hours: int = 0
) -> HTMLResponse:
    """What a loaded rule of the caller's department would have raised on stored history,
    over the caller's own devices only."""
    try:
        service = ctx.get(RuleService)
    except LookupError as err:
        raise HTTPException(503, str(err)) from err
    rule = service.ruleset.get(rule_id)
    if rule is None or rule.department != caller.department:
        raise HTTPException(404, f"rule {rule_id} not found in your department's pack")
    clues: list[DryClue] = []
    until = pages(ctx).clock.now()
    if hours in DRY_RUN_HOURS:
        # dry_run itself keeps to the devices on subjects the caller's department supervises.
        with ctx.pool.connection() as conn:
            clues = dry_run(
                conn, rule, service.directory, service.settings.credit,
                service.settings.allowed_lateness_s, until - timedelta(hours=hours), until,
                caller.department,
            )  # fmt: skip
    spans = [
        [c.started_at.isoformat(), (c.ended_at or until).isoformat(), c.credit_code or ""]
        for c in clues
    ]
    return pages(ctx).render(
        request, "dry_run.html", caller, active="rules", rule=rule, hours=hours,
        choices=DRY_RUN_HOURS, clues=clues, spans=spans,
        since=until - timedelta(hours=hours or 24), until=until,
    )  # fmt: skip


@router.post("/silences/{silence_id}/expire")
def expire_silence(silence_id: int, request: Request, ctx: Ctx, caller: Officer) -> Response:
    """End a silence now; it stays on record with who ended it."""
    service = alert_service(ctx)
    try:
        attempt(lambda: service.change_silence(caller, silence_id, expire=True))
    except Refused as err:
        return pages(ctx).render(request, "flash.html", caller, error=err)
    return Response(status_code=204, headers={"HX-Refresh": "true"})
