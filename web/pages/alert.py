"""The alert page: subject card, clues with legal basis and chart, evidence, timeline, actions."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

import orjson
import psycopg
from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from alerts import queries, silences
from alerts.lifecycle import Action, DismissReason
from alerts.silences import Matcher
from api.auth import Officer, Viewer
from api.context import Ctx
from api.routers.video import may_see_original
from ingest import queries as readings
from rules import queries as clue_queries
from rules.service import RuleService
from rules.spec import Rule
from video.evidence import EvidenceCorruptError, EvidenceNotFoundError
from video.service import VideoService
from web.pages.common import Refused, alert_service, attempt, pages, subject_of

router = APIRouter(include_in_schema=False)
CHART_BEFORE = timedelta(minutes=30)
CHART_AFTER = timedelta(minutes=10)


def _rule(ctx: Ctx, rule_id: str) -> Rule | None:
    try:
        return ctx.get(RuleService).ruleset.get(rule_id)
    except LookupError:
        return None


def _evidence(ctx: Ctx, caller: Viewer, ids: list[str]) -> list[dict[str, Any]]:
    """Each evidence once, with capture time, the variant this viewer gets and its check."""
    try:
        svc = ctx.get(VideoService)
    except LookupError:
        return [{"id": e, "missing": True} for e in ids]
    out = []
    for sha in ids:
        found = svc.evidence.find(sha)
        if found is None:
            out.append({"id": sha, "missing": True})
            continue
        record, variant = found
        original = may_see_original(svc, caller, record.camera_id)
        served = variant if original else variant.shared
        file = record.files.get(served)
        verified = False
        if file is not None:
            try:
                svc.evidence.read(file.sha256)  # re-hashes the bytes
                verified = True
            except (EvidenceCorruptError, EvidenceNotFoundError):
                verified = False
        out.append({
            "id": sha, "missing": False, "camera": record.camera_id,
            "captured_at": record.captured_at, "variant": served.value,
            "file_sha256": file.sha256 if file else "", "verified": verified,
            "blurred": served.is_shared, "faces": record.faces,
        })  # fmt: skip
    return out


@router.get("/alerts/{alert_id}", response_class=HTMLResponse)
def alert_page(alert_id: int, request: Request, ctx: Ctx, caller: Viewer) -> HTMLResponse:
    with ctx.pool.connection() as conn:
        record = queries.alert_record(conn, alert_id, caller.department)
        if record is None:
            raise HTTPException(404, f"alert {alert_id} not found")
        subject = subject_of(conn, record.alert.credit_code)
        triggers = clue_queries.triggers(conn, [c.clue_id for c in record.clues])
        a = record.alert
        rules = {c.rule_id: _rule(ctx, c.rule_id) for c in record.clues}
        # The charts' readings come with the page: no second request (and no second read of
        # the alert) per clue before a chart can be drawn.
        attributes = subject.attributes if subject else {}
        now = pages(ctx).clock.now()
        charts = {
            c.clue_id: orjson.dumps(
                _chart(conn, rules[c.rule_id], c, triggers.get(c.clue_id, []), attributes, now)
            ).decode()
            for c in record.clues
        }
        active_silences = silences.covering(
            conn, caller.department, [k for k in (a.subject_key, a.credit_code) if k],
            [c.rule_id for c in record.clues], [d for c in record.clues for d in c.device_ids],
            a.departments, now,
        )  # fmt: skip
    evidence_ids = list(dict.fromkeys(e for c in record.clues for e in c.evidence_ids))
    return pages(ctx).render(
        request,
        "alert.html",
        caller,
        active="board",
        record=record,
        a=record.alert,
        subject=subject,
        rules=rules,
        triggers=triggers,
        charts=charts,
        evidence=_evidence(ctx, caller, evidence_ids),
        reasons=[r.value for r in DismissReason],
        matchers=[Matcher.RULE.value, Matcher.SUBJECT.value],
        active_silences=active_silences,
    )


def _limit(rule: Rule | None, attributes: dict[str, float]) -> float | None:
    limit = getattr(rule, "limit", None)
    if isinstance(limit, int | float):
        return float(limit)
    attribute = getattr(limit, "attribute", None)
    if attribute is not None and attribute in attributes:
        return float(attributes[attribute]) * float(limit.factor)  # type: ignore[union-attr]
    return None


def _chart(
    conn: psycopg.Connection[Any],
    rule: Rule | None,
    clue: queries.ClueView,
    trig: list[clue_queries.TriggerReading],
    attributes: dict[str, float],
    now: datetime,
) -> dict[str, Any]:
    """Readings around the clue for its chart: series, limit line, the clue's span, validity."""
    end = clue.ended_at or now
    since, until = clue.started_at - CHART_BEFORE, end + CHART_AFTER
    lines = []
    for device_id, metric in dict.fromkeys((t.device_id, t.metric) for t in trig if t.metric):
        points = readings.series(conn, device_id, metric, since, until)
        lines.append({
            "name": f"{device_id} · {metric}",
            "data": [[p.time.isoformat(), p.value] for p in points],
        })  # fmt: skip
    ratio = None
    size = getattr(rule, "size", None)
    interval = getattr(rule, "expected_interval", None)
    if rule is not None and getattr(rule, "kind", "") == "window" and interval and trig:
        span = float(size) if size else (end - clue.started_at).total_seconds() or 3600.0
        first = trig[0]
        got = readings.count_between(
            conn, first.device_id, first.metric,
            first.time, first.until or first.time + timedelta(seconds=span),
        )  # fmt: skip
        expected = max(span / float(interval), 1.0)
        ratio = min(got / expected, 1.0)
    return {
        "series": lines, "limit": _limit(rule, attributes),
        "span": [clue.started_at.isoformat(), end.isoformat()],
        "valid_ratio": ratio,
        "min_valid_ratio": getattr(rule, "min_valid_ratio", None),
        "triggers": [[t.time.isoformat(), t.value] for t in trig if t.value is not None],
    }  # fmt: skip


@router.get("/alerts/{alert_id}/clues/{clue_id}/chart")
def clue_chart(alert_id: int, clue_id: int, ctx: Ctx, caller: Viewer) -> JSONResponse:
    """One clue's chart data (the alert page carries it inline; this serves other readers)."""
    with ctx.pool.connection() as conn:
        record = queries.alert_record(conn, alert_id, caller.department)
        clue = next((c for c in record.clues if c.clue_id == clue_id), None) if record else None
        if record is None or clue is None:
            raise HTTPException(404, f"clue {clue_id} not found on alert {alert_id}")
        trig = clue_queries.triggers(conn, [clue_id]).get(clue_id, [])
        subject = subject_of(conn, record.alert.credit_code)
        data = _chart(conn, _rule(ctx, clue.rule_id), clue, trig,
                      subject.attributes if subject else {}, pages(ctx).clock.now())  # fmt: skip
    return JSONResponse(data)


# -- actions ------------------------------------------------------------------------------


def _done(request: Request, alert_id: int) -> Response:
    """After an action the page reloads itself; a board button only needs the 204."""
    if request.headers.get("hx-target") or request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Refresh": "true"})
    return Response(status_code=303, headers={"Location": f"/alerts/{alert_id}"})


def _flash(ctx: Ctx, request: Request, caller: Officer, err: Refused) -> HTMLResponse:
    response = pages(ctx).render(request, "flash.html", caller, error=err)
    response.headers["HX-Retarget"] = "#flash"
    response.headers["HX-Reswap"] = "innerHTML"
    return response


def _act(
    request: Request,
    ctx: Ctx,
    caller: Officer,
    alert_id: int,
    action: Action,
    reason: DismissReason | None = None,
    note: str = "",
) -> Response:
    service = alert_service(ctx)
    try:
        attempt(lambda: service.act(alert_id, action, caller, reason, note))
    except Refused as err:
        return _flash(ctx, request, caller, err)
    if request.headers.get("hx-request") and "/alerts/" not in request.headers.get(
        "hx-current-url", "/alerts/"
    ):
        return Response(status_code=204)  # from the board: it reloads its list itself
    return _done(request, alert_id)


Note = Annotated[str, Form(max_length=2000)]


@router.post("/alerts/{alert_id}/ack")
def ack(alert_id: int, request: Request, ctx: Ctx, caller: Officer, note: Note = "") -> Response:
    return _act(request, ctx, caller, alert_id, Action.ACKNOWLEDGE, note=note)


@router.post("/alerts/{alert_id}/dispatch")
def dispatch(alert_id: int, request: Request, ctx: Ctx, caller: Officer) -> Response:
    return _act(request, ctx, caller, alert_id, Action.DISPATCH)


@router.get("/alerts/{alert_id}/dispatch/preview", response_class=HTMLResponse)
def dispatch_preview(alert_id: int, request: Request, ctx: Ctx, caller: Officer) -> Response:
    """What dispatch would create: kind, lead, participants and due time, before confirming."""
    service = alert_service(ctx)
    try:
        plan = attempt(lambda: service.preview_dispatch(alert_id, caller))
    except Refused as err:
        return _flash(ctx, request, caller, err)
    return pages(ctx).render(request, "dispatch_preview.html", caller, plan=plan, alert_id=alert_id)


@router.post("/alerts/{alert_id}/resolve")
def resolve(
    alert_id: int, request: Request, ctx: Ctx, caller: Officer, note: Note = ""
) -> Response:
    return _act(request, ctx, caller, alert_id, Action.RESOLVE, note=note)


@router.post("/alerts/{alert_id}/dismiss")
def dismiss(
    alert_id: int,
    request: Request,
    ctx: Ctx,
    caller: Officer,
    reason: Annotated[DismissReason, Form()],
    note: Note = "",
) -> Response:
    return _act(request, ctx, caller, alert_id, Action.DISMISS, reason, note)


@router.post("/alerts/{alert_id}/reopen")
def reopen(alert_id: int, request: Request, ctx: Ctx, caller: Officer, note: Note = "") -> Response:
    return _act(request, ctx, caller, alert_id, Action.REOPEN, note=note)
