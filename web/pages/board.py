"""The alert board (home page): filters, search, sort and paging on the server, live over SSE."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from alerts import queries
from alerts.lifecycle import OPEN_STATES, AlertState
from api.auth import Viewer
from rules.models import Severity
from subjects.repository import SubjectQuery, SubjectRepository
from web.pages.common import Ctx, pages, subject_actor, subjects_service

router = APIRouter(include_in_schema=False)
_CODE_LIKE = re.compile(r"^[0-9A-HJ-NP-RTUW-Y]{2,18}$", re.IGNORECASE)
NAME_MATCHES_MAX = 1000


def _filter(
    ctx: Ctx,
    caller: Viewer,
    state: list[str] | None,
    severity: list[str] | None,
    grid: str | None,
    dept: str | None,
    lead: bool,
    q: str | None,
    sort: str,
    order: str,
    page: int,
    size: int,
) -> queries.BoardFilter:
    states = tuple(s for s in (state or []) if s in AlertState.__members__.values())
    codes: tuple[str, ...] | None = None
    prefix = None
    text = (q or "").strip()
    if text:
        # Search by name through the subject library; a code-like text also matches codes.
        found = subjects_service(ctx).repository.search(
            SubjectQuery(q=text, limit=NAME_MATCHES_MAX), subject_actor(caller)
        )
        codes = tuple(s.credit_code for s in found.items)
        if _CODE_LIKE.match(text):
            prefix = text
    return queries.BoardFilter(
        department=caller.department,
        states=states or tuple(sorted(s.value for s in OPEN_STATES)),
        severities=tuple(s for s in (severity or []) if s in Severity.__members__.values()),
        grid=grid or None,
        involving=dept or None,
        we_lead=lead,
        credit_codes=codes,
        code_prefix=prefix,
        sort=queries.BoardSort(sort) if sort in queries.BoardSort.__members__.values() else
        queries.BoardSort.OPENED,
        descending=order != "asc",
        limit=size,
        offset=(max(page, 1) - 1) * size,
    )  # fmt: skip


def _render(request: Request, ctx: Ctx, caller: Viewer, template: str, **q: object) -> HTMLResponse:
    renderer = pages(ctx)
    size = renderer.settings.page_size
    f = _filter(ctx, caller, size=size, **q)  # type: ignore[arg-type]
    with ctx.pool.connection() as conn:
        result = queries.board(conn, f)
        codes = [r.alert.credit_code for r in result.rows if r.alert.credit_code]
        names = SubjectRepository.fetch_many(conn, codes)
        # Only the whole page has the filter form; the list reloaded on events skips it.
        grids = queries.grids(conn, caller.department) if template == "board.html" else []
    return renderer.render(
        request,
        template,
        caller,
        active="board",
        result=result,
        names=names,
        grids=grids,
        f=f,
        q=q,
        page=max(int(q["page"]), 1),  # type: ignore[call-overload]
        pages_total=max((result.total + size - 1) // size, 1),
        states=[s.value for s in AlertState],
        severities=[s.value for s in Severity],
        query=request.url.query,
    )


@router.get("/", response_class=HTMLResponse)
def board(
    request: Request,
    ctx: Ctx,
    caller: Viewer,
    state: Annotated[list[str] | None, Query()] = None,
    severity: Annotated[list[str] | None, Query()] = None,
    grid: str | None = None,
    dept: str | None = None,
    lead: bool = False,
    q: str | None = None,
    sort: str = "opened",
    order: str = "desc",
    page: Annotated[int, Query(ge=1)] = 1,
) -> HTMLResponse:
    return _render(
        request, ctx, caller, "board.html", state=state, severity=severity, grid=grid,
        dept=dept, lead=lead, q=q, sort=sort, order=order, page=page,
    )  # fmt: skip


@router.get("/board/rows", response_class=HTMLResponse)
def board_rows(
    request: Request,
    ctx: Ctx,
    caller: Viewer,
    state: Annotated[list[str] | None, Query()] = None,
    severity: Annotated[list[str] | None, Query()] = None,
    grid: str | None = None,
    dept: str | None = None,
    lead: bool = False,
    q: str | None = None,
    sort: str = "opened",
    order: str = "desc",
    page: Annotated[int, Query(ge=1)] = 1,
) -> HTMLResponse:
    """The list alone: the board reloads it on every event and every reconnect."""
    return _render(
        request, ctx, caller, "board_rows.html", state=state, severity=severity, grid=grid,
        dept=dept, lead=lead, q=q, sort=sort, order=order, page=page,
    )  # fmt: skip


@router.get("/board")
def old_board() -> RedirectResponse:
    """The old single-page board lived here; bookmarks land on the workbench."""
    return RedirectResponse("/", status_code=308)
