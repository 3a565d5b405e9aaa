"""The alert board (home page): filters, search, sort and paging on the server, live over SSE."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from alerts import queries
from alerts.lifecycle import OPEN_STATES, AlertState
from api.auth import Viewer
from rules.models import Severity
from subjects.repository import SubjectQuery, SubjectRepository
from web.pages.common import Ctx, pages, subjects_service

router = APIRouter(include_in_schema=False)
_CODE_LIKE = re.compile(r"^[0-9A-HJ-NP-RTUW-Y]{2,18}$", re.IGNORECASE)
NAME_MATCHES_MAX = 1000


@dataclass(frozen=True, slots=True)
class BoardParams:
    """The board's query string, shared by the whole page and the list it reloads."""

    state: list[str] | None
    severity: list[str] | None
    grid: str | None
    dept: str | None
    lead: bool
    q: str | None
    sort: str
    order: str
    page: int


def board_params(
    state: Annotated[list[str] | None, Query()] = None,
    severity: Annotated[list[str] | None, Query()] = None,
    grid: str | None = None,
    dept: str | None = None,
    lead: bool = False,
    q: str | None = None,
    sort: str = "opened",
    order: str = "desc",
    page: Annotated[int, Query(ge=1)] = 1,
) -> BoardParams:
    return BoardParams(state, severity, grid, dept, lead, q, sort, order, page)


Params = Annotated[BoardParams, Depends(board_params)]


def _filter(ctx: Ctx, caller: Viewer, p: BoardParams, size: int) -> queries.BoardFilter:
    states = tuple(s for s in (p.state or []) if s in AlertState.__members__.values())
    codes: tuple[str, ...] | None = None
    prefix = None
    text = (p.q or "").strip()
    if text:
        # Search by name through the subject library; a code-like text also matches codes.
        found = subjects_service(ctx).repository.search(
            SubjectQuery(q=text, limit=NAME_MATCHES_MAX), caller
        )
        codes = tuple(s.credit_code for s in found.items)
        if _CODE_LIKE.match(text):
            prefix = text
    return queries.BoardFilter(
        department=caller.department,
        states=states or tuple(sorted(s.value for s in OPEN_STATES)),
        severities=tuple(s for s in (p.severity or []) if s in Severity.__members__.values()),
        grid=p.grid or None,
        involving=p.dept or None,
        we_lead=p.lead,
        credit_codes=codes,
        code_prefix=prefix,
        sort=queries.BoardSort(p.sort) if p.sort in queries.BoardSort.__members__.values() else
        queries.BoardSort.OPENED,
        descending=p.order != "asc",
        limit=size,
        offset=(max(p.page, 1) - 1) * size,
    )  # fmt: skip


def _render(
    request: Request, ctx: Ctx, caller: Viewer, template: str, p: BoardParams
) -> HTMLResponse:
    renderer = pages(ctx)
    size = renderer.settings.page_size
    f = _filter(ctx, caller, p, size)
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
        q=p,
        page=max(p.page, 1),
        pages_total=max((result.total + size - 1) // size, 1),
        states=[s.value for s in AlertState],
        severities=[s.value for s in Severity],
        query=request.url.query,
    )


@router.get("/", response_class=HTMLResponse)
def board(request: Request, ctx: Ctx, caller: Viewer, p: Params) -> HTMLResponse:
    return _render(request, ctx, caller, "board.html", p)


@router.get("/board/rows", response_class=HTMLResponse)
def board_rows(request: Request, ctx: Ctx, caller: Viewer, p: Params) -> HTMLResponse:
    """The list alone: the board reloads it on every event and every reconnect."""
    return _render(request, ctx, caller, "board_rows.html", p)


@router.get("/board")
def old_board() -> RedirectResponse:
    """The old single-page board lived here; bookmarks land on the workbench."""
    return RedirectResponse("/", status_code=308)
