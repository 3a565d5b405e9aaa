"""Unified social credit code (统一社会信用代码) validation per GB 32100-2015."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# GB 32100-2015 §4: the code uses digits and upper-case letters without I, O, Z, S and V;
# a character's value is its index here (0-30).
CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {c: i for i, c in enumerate(CHARSET)}
# Weight of positions 1-17: 3**(i) mod 31, as the standard tabulates them.
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
LENGTH = 18

# Position 1 (登记管理部门代码) and the categories (机构类别代码) position 2 may take under it.
# 1/5/9/Y are in the 2015 text; the others were assigned to further registration
# authorities since and appear on issued codes.
AUTHORITIES: Mapping[str, tuple[str, Mapping[str, str]]] = {
    "1": (
        "机构编制",
        {"1": "机关", "2": "事业单位", "3": "中央编办直接管理的群众团体", "9": "其他"},
    ),
    "2": ("外交", {"1": "外国常驻新闻机构", "9": "其他"}),
    "3": (
        "司法行政",
        {
            "1": "律师执业机构",
            "2": "公证处",
            "3": "基层法律服务所",
            "4": "司法鉴定机构",
            "5": "仲裁委员会",
            "9": "其他",
        },
    ),
    "4": ("文化", {"1": "外国在华文化中心", "9": "其他"}),
    "5": ("民政", {"1": "社会团体", "2": "民办非企业单位", "3": "基金会", "9": "其他"}),
    "6": (
        "旅游",
        {"1": "外国旅游部门常驻代表机构", "2": "港澳台地区旅游部门常驻代表机构", "9": "其他"},
    ),
    "7": ("宗教", {"1": "宗教活动场所", "2": "宗教院校", "9": "其他"}),
    "8": ("工会", {"1": "基层工会", "9": "其他"}),
    "9": ("工商", {"1": "企业", "2": "个体工商户", "3": "农民专业合作社"}),
    "A": ("中央军委改革和编制办公室", {"1": "军队事业单位", "9": "其他"}),
    "N": (
        "农业",
        {"1": "组级集体经济组织", "2": "村级集体经济组织", "3": "乡镇级集体经济组织", "9": "其他"},
    ),
    "Y": ("其他", {"1": "其他"}),
}

# First two digits of a GB/T 2260 division code (provinces); "100000" marks national level.
PROVINCES = frozenset({
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
    "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64",
    "65", "71", "81", "82",
})  # fmt: skip
# GB 11714: the organisation code (positions 9-17) carries its own check character.
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


class CreditCodeError(ValueError):
    """A credit code breaks a rule of the standard; names the 1-based position and the rule."""

    def __init__(self, code: str, position: int | None, rule: str) -> None:
        where = f"position {position}" if position is not None else "length"
        super().__init__(f"credit code {code!r}: {where}: {rule}")
        self.code = code
        self.position = position
        self.rule = rule


@dataclass(frozen=True, slots=True)
class CreditCodeParts:
    """The segments of a valid code."""

    authority: str
    authority_name: str
    category: str
    category_name: str
    division: str
    organisation: str
    check: str


def check_character(first17: str) -> str:
    """The check character (position 18) of the first 17 characters."""
    total = sum(_VALUE[c] * w for c, w in zip(first17, WEIGHTS, strict=True))
    return CHARSET[(31 - total % 31) % 31]


def organisation_check(body8: str) -> str:
    """GB 11714 check character of an 8-character organisation code body."""
    total = sum(int(c, 36) * w for c, w in zip(body8, _ORG_WEIGHTS, strict=True))
    value = 11 - total % 11
    return {10: "X", 11: "0"}.get(value, str(value))


def normalize(code: str) -> str:
    """Surrounding whitespace dropped and letters upper-cased, as codes are often typed."""
    return code.strip().upper()


def validate(code: str) -> str:
    """Return the normalized code or raise CreditCodeError naming position and rule."""
    c = normalize(code)
    if len(c) != LENGTH:
        raise CreditCodeError(c, None, f"must be {LENGTH} characters, got {len(c)}")
    for i, ch in enumerate(c, start=1):
        if ch not in _VALUE:
            raise CreditCodeError(
                c, i, f"{ch!r} is not allowed (digits and A-Z except I, O, Z, S, V)"
            )
    authority = AUTHORITIES.get(c[0])
    if authority is None:
        raise CreditCodeError(
            c, 1, f"registration authority code {c[0]!r} is not one of {''.join(AUTHORITIES)}"
        )
    name, categories = authority
    if c[1] not in categories:
        raise CreditCodeError(
            c,
            2,
            f"category {c[1]!r} is not defined under authority {c[0]} ({name}); "
            f"allowed: {', '.join(categories)}",
        )
    division = c[2:8]
    for i, ch in enumerate(division, start=3):
        if not ch.isdigit():
            raise CreditCodeError(c, i, f"administrative division code must be digits, got {ch!r}")
    if division[:2] not in PROVINCES and division != "100000":
        raise CreditCodeError(
            c, 3, f"administrative division {division} does not start with a province code"
        )
    org_check = organisation_check(c[8:16])
    if c[16] != org_check:
        raise CreditCodeError(
            c, 17, f"organisation code check character must be {org_check!r} (GB 11714)"
        )
    expected = check_character(c[:17])
    if c[17] != expected:
        raise CreditCodeError(
            c, 18, f"check character must be {expected!r} (weighted sum mod 31), got {c[17]!r}"
        )
    return c


def parts(code: str) -> CreditCodeParts:
    """Validate and split a code into its segments."""
    c = validate(code)
    name, categories = AUTHORITIES[c[0]]
    return CreditCodeParts(
        authority=c[0],
        authority_name=name,
        category=c[1],
        category_name=categories[c[1]],
        division=c[2:8],
        organisation=c[8:17],
        check=c[17],
    )


def make(authority: str, category: str, division: str, body8: str) -> str:
    """Assemble a code with both check characters (for fixtures and demos)."""
    first17 = authority + category + division + body8 + organisation_check(body8)
    return validate(first17 + check_character(first17))
