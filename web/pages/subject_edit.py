"""The subject file's edits: basic data, permit limits, credit, department links and
requests, device bindings. Each validates its form, calls the library (which checks roles
and scope again and audits the change with the person's name) and comes back to the file."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from api.auth import Officer
from api.context import Ctx
from subjects.errors import SubjectError, SubjectNotFoundError
from subjects.repository import SubjectRepository
from subjects.schema import LinkIn, LinkRequestOut, SubjectPatch
from web.pages import subject_forms as forms
from web.pages.common import pages, subjects_service
from web.pages.subject_forms import Errors
from web.pages.subject_refusals import library_refusal
from web.pages.subjects import render_file, render_library

router = APIRouter(include_in_schema=False)
Text = Annotated[str, Form(max_length=2000)]


def _scoped(ctx: Ctx, caller: Officer, code: str) -> tuple[SubjectRepository, str]:
    """The repository and the subject's code; another department's subject answers 404
    here, before any form is read."""
    repo = subjects_service(ctx).repository
    try:
        return repo, repo.get(code.upper(), caller).credit_code
    except SubjectNotFoundError as err:
        raise HTTPException(404, str(err)) from err


def _done(code: str, what: str, section: str) -> Response:
    return RedirectResponse(f"/subjects/{quote(code)}?done={what}#{section}", status_code=303)


def _refused(
    request: Request,
    ctx: Ctx,
    caller: Officer,
    code: str,
    errors: Errors,
    form: dict[str, str],
    section: str,
    status_code: int = 422,
) -> Response:
    return render_file(request, ctx, caller, code, status_code, errors, form, section)


def _change(
    request: Request,
    ctx: Ctx,
    caller: Officer,
    code: str,
    section: str,
    form: dict[str, str],
    field: str,
    change: Callable[[], str],
) -> Response:
    """Run one change of the library (it returns what it did, for the file's notice); a
    refusal shows the file again with the library's sentence under `field` or the form's
    field it names."""
    try:
        done = change()
    except SubjectError as err:
        status_code, errors = library_refusal(request, ctx, err, field, form)
        return _refused(request, ctx, caller, code, errors, form, section, status_code)
    return _done(code, done, section)


def _patch(
    request: Request,
    ctx: Ctx,
    caller: Officer,
    code: str,
    section: str,
    form: dict[str, str],
    parse: Callable[[], tuple[SubjectPatch | None, Errors]],
) -> Response:
    repo, code = _scoped(ctx, caller, code)
    patch, errors = parse()
    if patch is None:
        return _refused(request, ctx, caller, code, errors, form, section)

    def update() -> str:
        repo.update(code, patch, caller)
        return section

    return _change(request, ctx, caller, code, section, form, "form", update)


@router.post("/subjects")
def create_subject(
    request: Request,
    ctx: Ctx,
    caller: Officer,
    credit_code: Text = "",
    name: Text = "",
    address: Text = "",
    grid: Text = "",
    industry: Text = "",
    credit_grade: Text = "",
    risk_level: Text = "",
) -> Response:
    """A new subject in the library, supervised by the caller's department from now."""
    form = {"credit_code": credit_code, "name": name, "address": address, "grid": grid,
            "industry": industry, "credit_grade": credit_grade,
            "risk_level": risk_level}  # fmt: skip
    data, errors = forms.new_subject(form)
    if data is None:
        return render_library(request, ctx, caller, "", 422, errors, form)
    try:
        subjects_service(ctx).repository.create(data, caller)
    except SubjectError as err:
        status_code, errors = library_refusal(request, ctx, err, "credit_code", form)
        return render_library(request, ctx, caller, "", status_code, errors, form)
    return _done(data.credit_code, "created", "basic")


@router.post("/subjects/{code}/join")
def join_subject(code: str, request: Request, ctx: Ctx, caller: Officer) -> Response:
    """The caller's department asks to supervise a subject others have in the library (the
    one write that works on a subject the department cannot see: it reveals only that the
    code exists). Nobody supervising it: linked at once; else a request waits for consent."""
    repo = subjects_service(ctx).repository
    form = {"credit_code": code}
    try:
        made = repo.link(code.strip().upper(), LinkIn(department=caller.department), caller)
    except SubjectError as err:
        status_code, errors = library_refusal(request, ctx, err, "credit_code")
        return render_library(request, ctx, caller, "", status_code, errors, form)
    if isinstance(made, LinkRequestOut):
        return RedirectResponse("/subjects?done=requested", status_code=303)
    return _done(made.credit_code, "linked", "departments")


@router.post("/subjects/{code}/basic")
def edit_basic(
    code: str,
    request: Request,
    ctx: Ctx,
    caller: Officer,
    name: Text = "",
    address: Text = "",
    grid: Text = "",
    industry: Text = "",
    latitude: Text = "",
    longitude: Text = "",
) -> Response:
    form = {"name": name, "address": address, "grid": grid, "industry": industry,
            "latitude": latitude, "longitude": longitude}  # fmt: skip
    return _patch(request, ctx, caller, code, "basic", form, lambda: forms.basic_patch(form))


@router.post("/subjects/{code}/risk")
def edit_risk(
    code: str,
    request: Request,
    ctx: Ctx,
    caller: Officer,
    risk_level: Text = "",
    tags: Text = "",
) -> Response:
    """The risk level and the tags (the whole list: tags left out of the field are removed)."""
    form = {"risk_level": risk_level, "tags": tags}
    return _patch(request, ctx, caller, code, "risk", form, lambda: forms.risk_patch(form))


@router.post("/subjects/{code}/limits")
def edit_limits(
    code: str, request: Request, ctx: Ctx, caller: Officer, attributes: Text = ""
) -> Response:
    form = {"attributes": attributes}
    return _patch(
        request, ctx, caller, code, "limits", form, lambda: forms.limits_patch(attributes)
    )


@router.post("/subjects/{code}/credit")
def edit_credit(
    code: str,
    request: Request,
    ctx: Ctx,
    caller: Officer,
    credit_scheme: Text = "",
    credit_grade: Text = "",
) -> Response:
    form = {"credit_scheme": credit_scheme, "credit_grade": credit_grade}
    return _patch(request, ctx, caller, code, "credit", form, lambda: forms.credit_patch(form))


@router.post("/subjects/{code}/departments")
def add_link(
    code: str,
    request: Request,
    ctx: Ctx,
    caller: Officer,
    department: Text = "",
    since: Text = "",
    until: Text = "",
) -> Response:
    """Start a supervision period, or file a request that waits for consent."""
    repo, code = _scoped(ctx, caller, code)
    form = {"department": department, "since": since, "until": until}
    known = set(pages(ctx).departments.codes())
    data, errors = forms.link_in(form, known, pages(ctx).clock.zone)
    if data is None:
        return _refused(request, ctx, caller, code, errors, form, "departments")

    def link() -> str:
        made = repo.link(code, data, caller)
        return "requested" if isinstance(made, LinkRequestOut) else "linked"

    return _change(request, ctx, caller, code, "departments", form, "department", link)


@router.post("/subjects/{code}/departments/{department}/end")
def end_link(code: str, department: str, request: Request, ctx: Ctx, caller: Officer) -> Response:
    repo, code = _scoped(ctx, caller, code)
    try:
        repo.end_link(code, department, caller)
    except SubjectError as err:
        status_code, errors = library_refusal(request, ctx, err, "form")
        return _refused(request, ctx, caller, code, errors, {}, "departments", status_code)
    try:
        repo.get(code, caller)
    except SubjectNotFoundError:
        # The department ended its own supervision: the file is no longer its to open.
        return RedirectResponse("/subjects?done=unlinked", status_code=303)
    return _done(code, "unlinked", "departments")


@router.post("/subjects/{code}/link-requests/{request_id}/{decision}")
def decide_request(
    code: str,
    request_id: int,
    decision: str,
    request: Request,
    ctx: Ctx,
    caller: Officer,
    reason: Text = "",
) -> Response:
    """Approve or refuse a request to join this subject (admins of its departments)."""
    if decision not in ("approve", "refuse"):
        raise HTTPException(404, "Not Found")
    repo, code = _scoped(ctx, caller, code)
    if request_id not in {r.id for r in repo.link_requests(caller, code=code)}:
        raise HTTPException(404, f"link request {request_id} not found on {code}")

    def decide() -> str:
        if decision == "approve":
            repo.approve_link(request_id, reason.strip(), caller)
            return "approved"
        repo.refuse_link(request_id, reason.strip(), caller)
        return "refused"

    return _change(request, ctx, caller, code, "departments", {}, "request", decide)


@router.post("/subjects/{code}/devices")
def bind_device(
    code: str,
    request: Request,
    ctx: Ctx,
    caller: Officer,
    device_id: Text = "",
    role: Text = "",
    point: Text = "",
) -> Response:
    """Bind a device to this subject: new devices by the platform admin, the department's
    own devices moved here from another of its subjects."""
    repo, code = _scoped(ctx, caller, code)
    form = {"device_id": device_id, "role": role, "point": point}
    device, data, errors = forms.binding_in(form, code)
    if data is None:
        return _refused(request, ctx, caller, code, errors, form, "devices")

    def bind() -> str:
        repo.bind(device, data, caller)
        return "bound"

    return _change(request, ctx, caller, code, "devices", form, "device_id", bind)


@router.post("/subjects/{code}/devices/{device_id}/unbind")
def unbind_device(
    code: str, device_id: str, request: Request, ctx: Ctx, caller: Officer
) -> Response:
    repo, code = _scoped(ctx, caller, code)
    if device_id not in {b.device_id for b in repo.bindings_of(code, caller)}:
        raise HTTPException(404, f"device {device_id!r} is not bound to {code}")

    def unbind() -> str:
        repo.unbind(device_id, caller)
        return "unbound"

    return _change(request, ctx, caller, code, "devices", {}, "form", unbind)
