"""The import's report: per row and column a stable reason code, its values, and English text.

Pages show the code through their catalogs (Chinese first); the API keeps `reason`, the
English sentence it always returned, beside the code.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

# Columns `attr.<key>` carry the subject's numeric attributes (permit limits).
ATTRIBUTE_PREFIX = "attr."


class ImportFormat(StrEnum):
    CSV = "csv"
    JSON = "json"


class ImportReason(StrEnum):
    """Why a row, a column or the whole file was refused; stable codes callers may match."""

    NOT_UTF8 = "not_utf8"
    EMPTY_FILE = "empty_file"
    MALFORMED_CSV = "malformed_csv"
    CELL_COUNT = "cell_count"
    NOT_JSON = "not_json"
    NOT_A_LIST = "not_a_list"
    ROW_NOT_OBJECT = "row_not_object"
    UNKNOWN_COLUMN = "unknown_column"
    DUPLICATE_COLUMN = "duplicate_column"
    MISSING_COLUMN = "missing_column"
    NO_ROWS = "no_rows"
    REQUIRED = "required"
    TOO_LONG = "too_long"
    NOT_A_NUMBER = "not_a_number"
    INVALID_CREDIT_CODE = "invalid_credit_code"
    INVALID_CREDIT_GRADE = "invalid_credit_grade"
    INVALID_CREDIT_SCHEME = "invalid_credit_scheme"
    INVALID_RISK_LEVEL = "invalid_risk_level"
    INVALID_TAG = "invalid_tag"
    INVALID_ATTRIBUTE = "invalid_attribute"
    ATTRIBUTES_NOT_OBJECT = "attributes_not_object"
    NOT_A_LIST_CELL = "not_a_list_cell"
    UNKNOWN_DEPARTMENT = "unknown_department"
    RETIRED_DEPARTMENT = "retired_department"
    DEPARTMENT_NOT_ALLOWED = "department_not_allowed"
    DUPLICATE_ROW = "duplicate_row"
    SUPERVISED_BY_OTHERS = "supervised_by_others"
    ROLLED_BACK = "rolled_back"
    OUT_OF_RANGE = "out_of_range"
    INVALID_VALUE = "invalid_value"


class RowError(BaseModel):
    """One problem: `row` counts data records from 1 (0 is the header or the whole file);
    `line` is the CSV line the record ends on."""

    row: int
    line: int | None = None
    column: str
    code: ImportReason = Field(description="stable reason code (labels in the workbench)")
    params: dict[str, str | int] = Field(
        default_factory=dict, description="values the reason names (a byte, a department…)"
    )
    reason: str = Field(description="the reason in English")


class ImportReport(BaseModel):
    format: ImportFormat
    dry_run: bool
    committed: bool
    rows: int
    valid_rows: int
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    links_added: int = 0
    errors: list[RowError] = Field(default_factory=list)


R = ImportReason
# Pydantic's error types, and the columns whose own validators raise value errors, as codes.
_BY_TYPE = {
    "missing": R.REQUIRED,
    "string_too_short": R.REQUIRED,
    "string_too_long": R.TOO_LONG,
    "too_long": R.TOO_LONG,
    "float_parsing": R.NOT_A_NUMBER,
    "float_type": R.NOT_A_NUMBER,
    "finite_number": R.NOT_A_NUMBER,
    "greater_than_equal": R.OUT_OF_RANGE,
    "less_than_equal": R.OUT_OF_RANGE,
}
_BY_COLUMN = {
    "credit_code": R.INVALID_CREDIT_CODE,
    "credit_grade": R.INVALID_CREDIT_GRADE,
    "credit_scheme": R.INVALID_CREDIT_SCHEME,
    "risk_level": R.INVALID_RISK_LEVEL,
    "tags": R.INVALID_TAG,
    "attributes": R.INVALID_ATTRIBUTE,
}


def reason_of(column: str, err: Mapping[str, Any]) -> tuple[ImportReason, dict[str, str | int]]:
    """A stable code for one of pydantic's errors on `column`, and the values it names.

    The import report and the subject file's forms share it, so a cell and a field that
    break the same rule say the same thing.
    """
    kind = str(err.get("type", ""))
    value = err.get("input")
    shown = (
        str(value) if isinstance(value, str | int | float) and not isinstance(value, bool) else ""
    )
    if kind in _BY_TYPE:
        params: dict[str, str | int] = {"value": shown}
        limit = (err.get("ctx") or {}).get("max_length")
        if limit:
            params["max"] = int(limit)
        return _BY_TYPE[kind], params
    code = R.INVALID_ATTRIBUTE if column.startswith(ATTRIBUTE_PREFIX) else _BY_COLUMN.get(column)
    if code is None:
        return R.INVALID_VALUE, {"value": shown, "detail": str(err.get("msg", ""))}
    return code, {"value": shown}
