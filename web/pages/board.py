"""The alert board (home page): filters, search, sort and paging on the server, live over SSE."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from alerts import queries
from alerts.lifecycle import OPEN_STATES, AlertState
from api.auth import Viewer
from api.context import Ctx
from api.params import INT64_MAX
from rules.models import Severity
from subjects.repository import SubjectQuery, SubjectRepository
from web.pages.common import pages, subjects_service

router = APIRouter(include_in_schema=False)
_CODE_LIKE = re.compile(r"^[0-9A-HJ-NP-RTUW-Y]{2,18}$", re.IGNORECASE)
NAME_MATCHES_MAX = 1000
CHANGED_MAX = 200  # ids one changes request may name (a tab holds one page of 50)


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


def _board(
    conn: psycopg.Connection[Any], f: queries.BoardFilter
) -> tuple[queries.BoardFilter, queries.BoardPage]:
    """The page asked for, or the last one when the list has shrunk below it (a tab on page 3
    reloading after alerts closed shows page 2, not an empty list)."""
    result = queries.board(conn, f)
    if f.offset and f.offset >= result.total:
        f = replace(f, offset=max(result.total - 1, 0) // f.limit * f.limit)
        result = queries.board(conn, f)
    return f, result


def _page_values(
    request: Request, p: BoardParams, f: queries.BoardFilter, result: queries.BoardPage, size: int
) -> dict[str, Any]:
    """What board_summary.html and board_pager.html need, for the whole list and the changes."""
    return {
        "result": result,
        "f": f,
        "q": p,
        "page": f.offset // size + 1,
        "pages_total": max((result.total + size - 1) // size, 1),
        "query": request.url.query,
    }


def _render(
    request: Request, ctx: Ctx, caller: Viewer, template: str, p: BoardParams
) -> HTMLResponse:
    renderer = pages(ctx)
    size = renderer.settings.page_size
    f = _filter(ctx, caller, p, size)
    with ctx.pool.connection() as conn:
        f, result = _board(conn, f)
        codes = [r.alert.credit_code for r in result.rows if r.alert.credit_code]
        names = SubjectRepository.fetch_many(conn, codes)
        # Only the whole page has the filter form; the list reloaded on events skips it.
        grids = queries.grids(conn, caller.department) if template == "board.html" else []
    return renderer.render(
        request,
        template,
        caller,
        active="board",
        names=names,
        grids=grids,
        states=[s.value for s in AlertState],
        severities=[s.value for s in Severity],
        **_page_values(request, p, f, result, size),
    )


def _ids(name: str, text: str) -> frozenset[int]:
    """A comma-separated list of alert ids, refused clearly when it is anything else."""
    parts = [t for t in text.split(",") if t.strip()] if text else []
    if len(parts) > CHANGED_MAX:
        raise HTTPException(422, f"{name}: at most {CHANGED_MAX} alert ids")
    try:
        ids = frozenset(int(t) for t in parts)
    except ValueError:
        raise HTTPException(422, f"{name}: alert ids separated by commas") from None
    if any(i < 1 or i > INT64_MAX for i in ids):
        raise HTTPException(422, f"{name}: alert ids are positive integers")
    return ids


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


@router.get("/board/changes", response_class=HTMLResponse)
def board_changes(
    request: Request,
    ctx: Ctx,
    caller: Viewer,
    p: Params,
    changed: str = "",
    have: str = "",
) -> HTMLResponse:
    """The list after live events without re-sending it: the page's counts and order (same
    filters, sort and page as the whole list) and the rows of alerts in `changed` or not in
    `have` (the ids the tab shows). Everything is read now; nothing is remembered."""
    changed_ids, have_ids = _ids("changed", changed), _ids("have", have)
    renderer = pages(ctx)
    size = renderer.settings.page_size
    f = _filter(ctx, caller, p, size)
    with ctx.pool.connection() as conn:
        f, result = _board(conn, f)
        rows = [r for r in result.rows if r.alert.id in changed_ids or r.alert.id not in have_ids]
        names = SubjectRepository.fetch_many(
            conn, [r.alert.credit_code for r in rows if r.alert.credit_code]
        )
    return renderer.render(
        request,
        "board_changes.html",
        caller,
        active="board",
        names=names,
        rows=rows,
        order=[r.alert.id for r in result.rows],
        **_page_values(request, p, f, result, size),
    )
