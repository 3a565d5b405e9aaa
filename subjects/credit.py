"""Credit schemes as data: the grades of each scheme, their Chinese names and accepted spellings."""

from __future__ import annotations

from typing import Any

from subjects.models import CreditGrade, CreditScheme, EnvColour, Grade

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
