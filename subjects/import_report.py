"""The import's report: per row and column a stable reason code, its values, and English text.

Pages show the code through their catalogs (Chinese first); the API keeps `reason`, the
English sentence it always returned, beside the code.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field


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
