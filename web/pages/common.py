"""What every page route needs: the renderer, the services, refusals shown back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from fastapi import HTTPException

from alerts.errors import CodedError, NotFoundError
from alerts.lifecycle import TransitionRefused
from alerts.service import AlertService
from api.context import ApiContext
from subjects.repository import SubjectRepository
from subjects.schema import SubjectOut
from subjects.service import SubjectsService
from web.templating import Pages

T = TypeVar("T")


def pages(ctx: ApiContext) -> Pages:
    return ctx.get(Pages)


def service(ctx: ApiContext, kind: type[T]) -> T:
    try:
        return ctx.get(kind)
    except LookupError as err:
        raise HTTPException(503, str(err)) from err


def alert_service(ctx: ApiContext) -> AlertService:
    return service(ctx, AlertService)


def subjects_service(ctx: ApiContext) -> SubjectsService:
    return service(ctx, SubjectsService)


def subject_of(conn: psycopg.Connection[Any], code: str | None) -> SubjectOut | None:
    """The library's subject of an alert's or a task's credit code; None without a code or
    when it is no longer in the library."""
    return SubjectRepository.fetch_many(conn, [code]).get(code) if code else None


class Refused(Exception):  # noqa: N818 - reads as the outcome, like TransitionRefused
    """An action the page shows back as an error message: `code` is an alerts.errors.Refusal
    or one of web.labels.WEB_REFUSALS, each with a sentence in the catalogs."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def attempt(fn: Callable[[], T]) -> T:
    """Run a service command; refusals become Refused, unknown ids a 404."""
    try:
        return fn()
    except NotFoundError as err:
        raise HTTPException(404, str(err)) from err
    except (TransitionRefused, CodedError) as err:
        raise Refused(err.code, str(err)) from err
