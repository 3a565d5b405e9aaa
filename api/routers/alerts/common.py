"""What the alerts routers share: the service, the caller as an actor, refusals as answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi import HTTPException

from alerts.errors import CodedError, NotFoundError
from alerts.lifecycle import TransitionRefused
from alerts.service import AlertService
from api.context import ApiContext
from api.errors import CodedHTTPException

T = TypeVar("T")


def service_of(ctx: ApiContext) -> AlertService:
    try:
        return ctx.get(AlertService)
    except LookupError as err:
        raise HTTPException(503, "alerting is not running in this process") from err


def call(fn: Callable[[], T]) -> T:
    """Run a service command, translating its refusals into HTTP answers."""
    try:
        return fn()
    except NotFoundError as err:
        raise HTTPException(404, str(err)) from err
    except TransitionRefused as err:
        raise HTTPException(409, {"code": err.code, "message": str(err)}) from err
    except CodedError as err:
        raise CodedHTTPException(422, err.code, str(err)) from err
