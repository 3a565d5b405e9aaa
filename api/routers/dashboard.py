"""The live alerts board: one static page that reads the API and the event stream."""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["dashboard"])


@cache
def _page() -> str:
    return (resources.files("api") / "dashboard" / "board.html").read_text(encoding="utf-8")


@router.get("/board", response_class=HTMLResponse, include_in_schema=False)
def board() -> HTMLResponse:
    """The page holds no data; it asks for an API key and then calls /api/v1 with it."""
    return HTMLResponse(_page(), headers={"Cache-Control": "no-cache"})
