"""/api/v1 routes of the rules package: rules (list, get, validate, dry-run, reload), clues."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Admin, Viewer
from api.context import ApiContext, Ctx
from api.params import Id
from rules.dryrun import DryClue, dry_run
from rules.loader import RuleLoadError, parse_one
from rules.models import ClueStatus
from rules.queries import ClueFilter, ClueRow, department_clue, department_clues
from rules.service import RuleService
from rules.spec import Rule
from subjects.departments import department_codes

router = APIRouter(prefix="/api/v1", tags=["rules"])
MAX_DRY_RUN = timedelta(days=31)
UNPROCESSABLE = 422  # Starlette renamed its constant; the number is the contract


async def _raw_body(request: Request) -> bytes:
    return await request.body()


RawBody = Annotated[bytes, Depends(_raw_body)]


class RuleOut(BaseModel):
    id: str
    version: int
    kind: str
    department: str
    title: str
    severity: str
    source: str | None
    spec: dict[str, Any] = Field(description="the rule as loaded (YAML keys)")


class Problem(BaseModel):
    line: int | None
    message: str


class ValidateOut(BaseModel):
    valid: bool
    problems: list[Problem]
    rule: dict[str, Any] | None = None


class DryRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: dict[str, Any] | str = Field(description="the rule as a JSON object or YAML text")
    since: datetime
    until: datetime
    device_ids: list[str] | None = Field(default=None, description="only these devices")


class ClueOut(BaseModel):
    id: int | None = None
    fingerprint: str
    rule_id: str
    rule_version: int | None = None
    title: str | None = None
    department: str | None = None
    severity: str
    status: ClueStatus | None = None
    withdrawn: bool = False
    credit_code: str | None
    device_ids: list[str]
    started_at: datetime
    ended_at: datetime | None
    summary: str
    trigger: list[dict[str, Any]]
    evidence_ids: list[str] = []


class ReloadOut(BaseModel):
    ok: bool
    rules: int
    problems: list[Problem]


def _service(ctx: ApiContext) -> RuleService:
    try:
        return ctx.get(RuleService)
    except LookupError as err:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(err)) from err


def _out(rule: Rule, source: str | None) -> RuleOut:
    return RuleOut(
        id=rule.id,
        version=rule.version,
        kind=rule.kind,
        department=rule.department,
        title=rule.title,
        severity=rule.severity.value,
        source=source,
        spec=rule.model_dump(mode="json", by_alias=True, exclude_defaults=True),
    )


@router.get("/rules")
def list_rules(caller: Viewer, ctx: Ctx) -> list[RuleOut]:
    """The active rules of the caller's department."""
    rs = _service(ctx).ruleset
    return [_out(r, rs.sources.get(r.id)) for r in rs.rules if r.department == caller.department]


@router.get("/rules/{rule_id}")
def get_rule(rule_id: str, caller: Viewer, ctx: Ctx) -> RuleOut:
    rs = _service(ctx).ruleset
    rule = rs.get(rule_id)
    if rule is None or rule.department != caller.department:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no rule {rule_id!r}")
    return _out(rule, rs.sources.get(rule_id))


@router.post("/rules/validate")
def validate_rule(caller: Viewer, ctx: Ctx, body: RawBody) -> ValidateOut:
    """Validate one rule posted as YAML or JSON; problems name the line."""
    with ctx.pool.connection() as conn:
        departments = department_codes(conn)
    try:
        rule = parse_one(body.decode("utf-8", errors="replace"), departments)
    except RuleLoadError as err:
        return ValidateOut(
            valid=False, problems=[Problem(line=p.line, message=p.message) for p in err.problems]
        )
    return ValidateOut(valid=True, problems=[], rule=rule.model_dump(mode="json", by_alias=True))


@router.post("/rules/dry-run")
def dry_run_rule(req: DryRunIn, caller: Viewer, ctx: Ctx) -> list[ClueOut]:
    """The clues a rule would have raised over stored readings in [since, until]."""
    if req.until <= req.since or req.until - req.since > MAX_DRY_RUN:
        raise HTTPException(
            UNPROCESSABLE,
            f"until must be after since, at most {MAX_DRY_RUN.days} days later",
        )
    if req.since.tzinfo is None or req.until.tzinfo is None:
        raise HTTPException(UNPROCESSABLE, "since and until need a UTC offset")
    service = _service(ctx)
    text = req.rule if isinstance(req.rule, str) else orjson.dumps(req.rule).decode()
    with ctx.pool.connection() as conn:
        try:
            rule = parse_one(text, department_codes(conn))
        except RuleLoadError as err:
            raise HTTPException(
                UNPROCESSABLE,
                "rule: " + "; ".join(f"line {p.line}: {p.message}" for p in err.problems),
            ) from err
        if rule.department != caller.department:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"rule department {rule.department} is not yours ({caller.department})",
            )
        found = dry_run(
            conn,
            rule,
            service.directory,
            service.settings.credit,
            service.settings.allowed_lateness_s,
            req.since,
            req.until,
            caller.department,
            req.device_ids,
        )
    return [_dry_out(c) for c in found]


def _dry_out(c: DryClue) -> ClueOut:
    # A clue that was never stored: no id, version, title or status (their defaults).
    return ClueOut.model_validate(c, from_attributes=True)


@router.post("/rules/reload")
def reload_rules(caller: Admin, ctx: Ctx) -> ReloadOut:
    """Reload the rules directory; an invalid set is refused (422) and the old one stays."""
    result = _service(ctx).reload()
    out = ReloadOut(
        ok=result.ok,
        rules=result.rules,
        problems=[Problem(line=p.line, message=str(p)) for p in result.problems],
    )
    if not result.ok:
        raise HTTPException(UNPROCESSABLE, out.model_dump())
    return out


def _clue(row: ClueRow) -> ClueOut:
    return ClueOut.model_validate(row, from_attributes=True)


@router.get("/clues")
def list_clues(
    caller: Viewer,
    ctx: Ctx,
    credit_code: Annotated[str | None, Query(description="the subject")] = None,
    department: Annotated[str | None, Query(description="must be the caller's")] = None,
    rule_id: str | None = None,
    device_id: str | None = None,
    status_: Annotated[Literal["firing", "resolved"] | None, Query(alias="status")] = None,
    since: Annotated[datetime | None, Query(description="started at or after")] = None,
    until: Annotated[datetime | None, Query(description="started before")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ClueOut]:
    """Clues of the caller's department, newest first."""
    if department is not None and department != caller.department:
        return []
    where = ClueFilter(credit_code, rule_id, status_, device_id, since, until)
    with ctx.pool.connection() as conn:
        return [_clue(r) for r in department_clues(conn, caller.department, where, limit)]


@router.get("/clues/{clue_id}")
def get_clue(clue_id: Id, caller: Viewer, ctx: Ctx) -> ClueOut:
    with ctx.pool.connection() as conn:
        row = department_clue(conn, caller.department, clue_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no clue {clue_id}")
    return _clue(row)
