"""The subject file's forms: text fields into the library's own input shapes, or field errors.

Every error is a code of a label table (shown in the page's language next to its field),
never a sentence written here; values that break a library rule get the code the import
report uses for the same rule (subjects.import_report.reason_of).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from subjects.errors import SubjectError, SubjectInvalidError
from subjects.import_report import reason_of
from subjects.models import RiskLevel
from subjects.schema import DEVICE_ID, BindingIn, LinkIn, SubjectIn, SubjectPatch

_DEVICE = re.compile(DEVICE_ID)
# Between tags in the form: ASCII and full-width commas and semicolons, 、 and new lines.
TAG_SEPARATORS = re.compile(r"[,，;；、\n]")
MAX_TAGS = 64  # subjects.schema.Tags
RISK_LEVELS = tuple(r.value for r in RiskLevel)
BASIC_FIELDS = ("name", "address", "grid", "industry", "latitude", "longitude")
COORDINATE_RANGE = {"latitude": 90, "longitude": 180}


@dataclass(frozen=True, slots=True)
class FieldError:
    """`table` and `code` of web.labels, with the values the label names."""

    table: str
    code: str
    params: Mapping[str, str | int] = field(default_factory=dict)


Errors = dict[str, FieldError]
M = TypeVar("M", bound=BaseModel)


def _form(code: str, **params: str | int) -> FieldError:
    return FieldError("form_error", code, params)


def _validated(model: type[M], values: Mapping[str, object], errors: Errors) -> M | None:
    """`model` from `values`, or None with each of pydantic's errors filed under its field."""
    try:
        return model.model_validate(values)
    except ValidationError as err:
        for e in err.errors():
            column = str(e["loc"][0]) if e["loc"] else "form"
            code, params = reason_of(column, e)
            errors.setdefault(column, FieldError("import_reason", code.value, params))
        return None


def _number(text: str, name: str, errors: Errors) -> float | None:
    try:
        value = float(text)
    except ValueError:
        errors[name] = FieldError("import_reason", "not_a_number", {"value": text})
        return None
    if not math.isfinite(value):
        errors[name] = FieldError("import_reason", "not_a_number", {"value": text})
        return None
    return value


def basic_patch(form: Mapping[str, str]) -> tuple[SubjectPatch | None, Errors]:
    """Name, address, grid, industry and the coordinates: both given, or both emptied,
    which removes the position (the form shows the stored one, so empty means none)."""
    errors: Errors = {}
    values: dict[str, object] = {
        k: form.get(k, "") for k in ("name", "address", "grid", "industry")
    }
    texts = {k: form.get(k, "").strip() for k in COORDINATE_RANGE}
    if not any(texts.values()):
        values.update(latitude=None, longitude=None)
    else:
        for name, text in texts.items():
            if not text:
                errors[name] = _form("give_both_coordinates")
                continue
            value = _number(text, name, errors)
            if value is None:
                continue
            bound = COORDINATE_RANGE[name]
            if not -bound <= value <= bound:
                errors[name] = _form(f"{name}_range", value=text)
            values[name] = value
    if errors:
        return None, errors
    return _validated(SubjectPatch, values, errors), errors


def new_subject(form: Mapping[str, str]) -> tuple[SubjectIn | None, Errors]:
    """A subject as the library creates it: code and name required, the rest optional."""
    errors: Errors = {}
    values: dict[str, object] = {
        k: form.get(k, "").strip() for k in ("credit_code", "name", "address", "grid", "industry")
    }
    for k in ("credit_grade", "risk_level"):
        if form.get(k, "").strip():
            values[k] = form[k].strip()
    return _validated(SubjectIn, values, errors), errors


def risk_patch(form: Mapping[str, str]) -> tuple[SubjectPatch | None, Errors]:
    """The risk level (one of the four-colour scale) and the tags, the whole list: separated
    by commas, semicolons, 、 or new lines, as officers type them."""
    errors: Errors = {}
    tags = [t.strip() for t in TAG_SEPARATORS.split(form.get("tags", "")) if t.strip()]
    if len(set(tags)) > MAX_TAGS:
        errors["tags"] = _form("too_many_tags", max=MAX_TAGS)
    level = form.get("risk_level", "").strip()
    if level not in RISK_LEVELS:
        errors["risk_level"] = FieldError("import_reason", "invalid_risk_level", {"value": level})
    if errors:
        return None, errors
    return _validated(SubjectPatch, {"risk_level": level, "tags": tags}, errors), errors


def limits_patch(text: str) -> tuple[SubjectPatch | None, Errors]:
    """Permit limits, one `key = number` a line; the lines are the whole set (others go)."""
    errors: Errors = {}
    attributes: dict[str, object] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip() or not value.strip():
            errors.setdefault("attributes", _form("limit_line", line=number, value=line.strip()))
            continue
        parsed = _number(value.strip(), "attributes", errors)
        if parsed is not None:
            attributes[key.strip()] = parsed
    if errors:
        return None, errors
    return _validated(SubjectPatch, {"attributes": attributes}, errors), errors


def credit_patch(form: Mapping[str, str]) -> tuple[SubjectPatch | None, Errors]:
    """A grade and the scheme it belongs to (the library refuses a grade of another scheme)."""
    errors: Errors = {}
    grade = form.get("credit_grade", "").strip()
    if not grade:
        errors["credit_grade"] = FieldError("import_reason", "required", {"value": ""})
        return None, errors
    values = {"credit_scheme": form.get("credit_scheme", "").strip() or None, "credit_grade": grade}
    return _validated(SubjectPatch, values, errors), errors


def _local_time(text: str, name: str, zone: tzinfo, errors: Errors) -> datetime | None:
    """A datetime-local field read in the workbench's zone (what the officer sees)."""
    if not text.strip():
        return None
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        errors[name] = _form("invalid_time", value=text)
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


def link_in(form: Mapping[str, str], known: set[str], zone: tzinfo) -> tuple[LinkIn | None, Errors]:
    errors: Errors = {}
    dept = form.get("department", "").strip().upper()
    if not dept:
        errors["department"] = FieldError("import_reason", "required", {"value": ""})
    elif dept not in known:
        errors["department"] = FieldError(
            "import_reason", "unknown_department", {"department": dept}
        )
    since = _local_time(form.get("since", ""), "since", zone, errors)
    until = _local_time(form.get("until", ""), "until", zone, errors)
    if errors:
        return None, errors
    return _validated(LinkIn, {"department": dept, "since": since, "until": until}, errors), errors


def binding_in(form: Mapping[str, str], code: str) -> tuple[str, BindingIn | None, Errors]:
    """The device to bind to subject `code`, and its role and monitoring point."""
    errors: Errors = {}
    device = form.get("device_id", "").strip()
    if not _DEVICE.match(device):
        errors["device_id"] = _form("invalid_device_id", value=device)
    values = {
        "credit_code": code,
        "role": form.get("role", "").strip(),
        "point": form.get("point", ""),
    }
    data = _validated(BindingIn, values, errors)
    if "role" in errors:
        errors["role"] = _form("invalid_role", value=values["role"])
    if data is None and set(errors) == {"credit_code"}:
        # The code is the stored subject's (the page found it), not typed into the form: a
        # record kept from before check characters were enforced is still bindable.
        errors.clear()
        data = BindingIn.model_construct(
            credit_code=code, role=str(values["role"]), point=str(values["point"]).strip()
        )
    errors.pop("credit_code", None)
    return device, (None if errors else data), errors


# Params of the library's refusals that are department codes: shown by their names.
DEPARTMENT_PARAMS = ("department", "own", "successor", "departments")


def _codes(value: str | int) -> bool:
    """Department codes, one or several separated by commas (not a placeholder like —)."""
    return isinstance(value, str) and value.replace(",", "").isalnum()


def refusal(
    err: SubjectError,
    field_name: str,
    fields: Collection[str],
    names: Callable[[Iterable[str]], str],
) -> tuple[str, FieldError]:
    """A refusal of the library as the field it concerns and its catalog sentence: the
    field the library names when the form has it, else `field_name`. Department codes in
    its params are shown by name (`names` joins them in the page's language); the English
    message rides along as `detail` (shown only in English)."""
    params: dict[str, str | int] = {
        k: names(str(v).split(",")) if k in DEPARTMENT_PARAMS and _codes(v) else v
        for k, v in err.params.items()
    }
    params["detail"] = str(err)
    named = err.field if isinstance(err, SubjectInvalidError) else ""
    target = named if named in fields else field_name
    return target, FieldError("subject_refusal", err.code.value, params)
