"""The live stream: server-sent events of alert, clue and task changes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from alerts import events
from alerts.audit import canonical_json
from alerts.service import AlertService
from api.auth import Viewer, auth_settings, still_valid
from api.context import Ctx
from api.metrics import AuthMetrics
from api.params import INT64_MAX

router = APIRouter(prefix="/api/v1", tags=["alerts"])


HEARTBEAT_S = 15.0


def _frame(event: events.FeedEvent) -> str:
    data = canonical_json({"kind": event.kind, "id": event.entity_id, "at": event.at,
                           **event.payload})  # fmt: skip
    return f"id: {event.id}\nevent: {event.kind}\ndata: {data}\n\n"


@router.get("/stream")
async def stream(
    request: Request,
    ctx: Ctx,
    caller: Viewer,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    from_id: Annotated[
        int | None, Query(ge=0, le=INT64_MAX, description="like Last-Event-ID")
    ] = None,
) -> StreamingResponse:
    """Server-sent events of alert, clue and task changes concerning the caller's department.

    Reconnect with `Last-Event-ID` (or `from_id`) to receive everything after that event;
    without either, the stream starts with the next event.
    """
    start: int | None = from_id
    if last_event_id is not None:
        try:
            start = int(last_event_id)
        except ValueError:
            raise HTTPException(422, "Last-Event-ID must be an event id (an integer)") from None
        if not 0 <= start <= INT64_MAX:
            raise HTTPException(422, f"Last-Event-ID must lie between 0 and {INT64_MAX}")
    pool, department = ctx.pool, caller.department
    try:
        service: AlertService | None = ctx.get(AlertService)
    except LookupError:
        service = None
    poll_s = service.settings.stream_poll_s if service is not None else 0.5

    def read(after: int) -> list[events.FeedEvent]:
        with pool.connection() as conn:
            return events.read(conn, department, after)

    def current() -> int:
        with pool.connection() as conn:
            return events.last_id(conn)

    recheck_s = auth_settings(ctx).stream_recheck_s

    async def generate() -> AsyncIterator[str]:
        last = start if start is not None else await run_in_threadpool(current)
        yield f"retry: 2000\n: stream of {department} from event {last}\n\n"
        beat = checked = time.monotonic()
        while not await request.is_disconnected():
            if service is not None and service.stopping:
                return
            if time.monotonic() - checked >= recheck_s:
                # A disabled person, an ended session or a revoked key stops receiving now,
                # not at the next reconnect; the reconnect then answers 401.
                checked = time.monotonic()
                if not await run_in_threadpool(still_valid, ctx, caller):
                    ctx.get(AuthMetrics).streams_revoked.inc()
                    yield 'event: signed_out\ndata: {"reason": "session ended or key revoked"}\n\n'
                    return
            seen = service.events_version if service is not None else 0
            batch = await run_in_threadpool(read, last)
            for event in batch:
                last = event.id
                yield _frame(event)
            if batch:
                beat = time.monotonic()
                continue
            if time.monotonic() - beat > HEARTBEAT_S:
                beat = time.monotonic()
                yield ": keep-alive\n\n"
            # Wake at once on a commit in this process; other instances' events within poll_s.
            deadline = time.monotonic() + poll_s
            while time.monotonic() < deadline:
                await asyncio.sleep(0.02)
                if service is not None and service.events_version != seen:
                    break

    return StreamingResponse(
        generate(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
