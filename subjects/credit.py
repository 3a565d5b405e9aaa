"""Credit schemes as data: the grades of each scheme, their Chinese names and accepted spellings."""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from subjects.models import CreditGrade, CreditScheme, EnvColour, Grade, SupervisionMethod

GRADES: dict[CreditScheme, tuple[Grade, ...]] = {
    CreditScheme.ABCD: tuple(CreditGrade),
    CreditScheme.JIANGSU_ENV: tuple(EnvColour),
}
NAMES_ZH: dict[Grade, str] = {
    CreditGrade.A: "A级", CreditGrade.B: "B级", CreditGrade.C: "C级", CreditGrade.D: "D级",
    EnvColour.GREEN: "绿色", EnvColour.BLUE: "蓝色", EnvColour.YELLOW: "黄色",
    EnvColour.RED: "红色", EnvColour.BLACK: "黑色",
}  # fmt: skip
SCHEME_NAMES_ZH = {
    CreditScheme.ABCD: "信用等级（A–D）",
    CreditScheme.JIANGSU_ENV: "江苏省企业环保信用评价（绿/蓝/黄/红/黑）",
}

# Every spelling a department's spreadsheet uses, folded to lower case: "a", "A级", "绿", "绿色".
_SPELLINGS: dict[str, Grade] = {}
for _grade, _zh in NAMES_ZH.items():
    _SPELLINGS[_grade.value.lower()] = _grade
    _SPELLINGS[_zh.lower()] = _grade
    _SPELLINGS[_zh[0].lower()] = _grade
_SPELLINGS.update({"a类": CreditGrade.A, "b类": CreditGrade.B, "c类": CreditGrade.C})
_SPELLINGS["d类"] = CreditGrade.D


def _allowed() -> str:
    return "; ".join(
        f"{scheme.value}: " + ", ".join(f"{g.value} ({NAMES_ZH[g]})" for g in grades)
        for scheme, grades in GRADES.items()
    )


def parse_grade(value: Any) -> Grade:
    """A grade of either scheme from its code or a Chinese spelling; ValueError otherwise."""
    if isinstance(value, CreditGrade | EnvColour):
        return value
    if isinstance(value, str):
        found = _SPELLINGS.get(value.strip().lower())
        if found is not None:
            return found
    raise ValueError(f"{value!r} is not a credit grade (allowed: {_allowed()})")


def scheme_of(grade: Grade) -> CreditScheme:
    """The scheme a grade belongs to; grade values never collide across schemes."""
    return CreditScheme.ABCD if isinstance(grade, CreditGrade) else CreditScheme.JIANGSU_ENV


def check_in_scheme(scheme: CreditScheme, grade: Grade) -> None:
    """Raise ValueError naming the allowed grades when `grade` is not one of `scheme`'s."""
    if grade not in GRADES[scheme]:
        allowed = ", ".join(f"{g.value} ({NAMES_ZH[g]})" for g in GRADES[scheme])
        raise ValueError(
            f"{grade.value!r} is not a grade of credit scheme {scheme.value} (allowed: {allowed})"
        )


class GradeHandling(BaseModel):
    """What a grade changes in handling (subjects/credit_handling.yaml); never a limit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hold_factor: float = Field(gt=0)
    severity_shift: int = Field(ge=-3, le=3)
    method: SupervisionMethod
    draw_ratio: float = Field(ge=0, le=1)
    inspect_every_days: float | None = Field(gt=0)
    escalate_after_s: float | None = Field(gt=0)
    escalate_to: tuple[str, ...]
    notify_hold_s: float = Field(ge=0)


def load_handling(text: str) -> dict[Grade, GradeHandling]:
    """The handling table of every scheme; ValueError naming the scheme and grade at fault."""
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or set(data) != {"schemes"}:
        raise ValueError("credit handling: expected a mapping with `schemes:` only")
    table: dict[Grade, GradeHandling] = {}
    for scheme in CreditScheme:
        grades = data["schemes"].get(scheme.value)
        if not isinstance(grades, dict):
            raise ValueError(f"credit handling: scheme {scheme.value} is missing")
        for grade in GRADES[scheme]:
            if grade.value not in grades:
                raise ValueError(f"credit handling: {scheme.value}.{grade.value} is missing")
            try:
                table[grade] = GradeHandling.model_validate(grades[grade.value])
            except ValidationError as err:
                first = err.errors()[0]
                where = ".".join([scheme.value, grade.value, *map(str, first["loc"])])
                raise ValueError(f"credit handling: {where}: {first['msg']}") from err
        extra = set(grades) - {g.value for g in GRADES[scheme]}
        if extra:
            raise ValueError(f"credit handling: {scheme.value}: unknown grades {sorted(extra)}")
    extra_schemes = set(data["schemes"]) - {s.value for s in CreditScheme}
    if extra_schemes:
        raise ValueError(f"credit handling: unknown schemes {sorted(extra_schemes)}")
    return table


# Read once at import: the defaults of rules.credit and alerts.credit_handling come from it.
HANDLING: dict[Grade, GradeHandling] = load_handling(
    resources.files("subjects").joinpath("credit_handling.yaml").read_text(encoding="utf-8")
)
