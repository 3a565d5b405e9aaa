"""The subject library's refusals as the pages show them: an HTTP status by the refusal's
kind and the catalog sentence of its code beside the field it concerns."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from fastapi import Request

from api.context import Ctx
from subjects.errors import (
    SubjectConflictError,
    SubjectError,
    SubjectForbiddenError,
    SubjectNotFoundError,
)
from web.i18n import request_locale
from web.pages import subject_forms as forms
from web.pages.common import pages
from web.pages.subject_forms import Errors

_STATUS: dict[type[SubjectError], int] = {
    SubjectNotFoundError: 404,
    SubjectForbiddenError: 403,
    SubjectConflictError: 409,
}


def library_refusal(
    request: Request, ctx: Ctx, err: SubjectError, field: str, fields: Collection[str] = ()
) -> tuple[int, Errors]:
    """A status (404, 403, 409, else 422) and the refusal's sentence under the field the
    library names when it is one of the form's `fields`, else under `field`."""
    locale = request_locale(request, pages(ctx).settings.default_locale)
    names = pages(ctx).departments.names

    def named(codes: Iterable[str]) -> str:
        return names([c.strip() for c in codes if c.strip()], locale)

    target, error = forms.refusal(err, field, fields, named)
    return _STATUS.get(type(err), 422), {target: error}
