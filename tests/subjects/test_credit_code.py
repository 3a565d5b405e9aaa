"""GB 32100-2015 credit codes: valid ones pass, each broken rule is named with its position."""

from __future__ import annotations

import pytest

from subjects.credit_code import (
    CreditCodeError,
    check_character,
    make,
    organisation_check,
    parts,
    validate,
)

VALID = [
    # Issued codes of well-known companies (public registry data).
    "91110000600037341L",
    "9144030071526726XG",
    "91330100716105852F",
    # Assembled here with both check characters computed, one per authority kind.
    make("9", "2", "330106", "MA2H3K4L"),  # individual business
    make("5", "1", "330100", "50123456"),  # social organisation
    make("1", "2", "100000", "40000012"),  # national-level public institution
    make("Y", "1", "440300", "MA5F0P1Q"),
    make("N", "2", "330110", "N2K3M4P5"),  # village collective
]


@pytest.mark.parametrize("code", VALID)
def test_valid_codes_pass(code: str) -> None:
    assert validate(code) == code


def test_lower_case_and_spaces_are_normalized() -> None:
    assert validate("  91110000600037341l ") == "91110000600037341L"


def test_known_check_characters() -> None:
    assert check_character("91110000600037341") == "L"
    assert check_character("9144030071526726X") == "G"
    assert organisation_check("71526726") == "X"
    assert organisation_check("60003734") == "1"


def test_parts() -> None:
    p = parts("91330100716105852F")
    assert (p.authority, p.authority_name, p.category, p.category_name) == (
        "9",
        "工商",
        "1",
        "企业",
    )
    assert (p.division, p.organisation, p.check) == ("330100", "716105852", "F")


INVALID = [
    # (code, position or None for length, words the rule must contain)
    ("", None, "must be 18 characters, got 0"),
    ("91110000600037341", None, "must be 18 characters, got 17"),
    ("91110000600037341LL", None, "must be 18 characters, got 19"),
    ("91110000600O37341L", 12, "'O' is not allowed"),
    ("9111000060003734IL", 17, "'I' is not allowed"),
    ("91110000S00037341L", 9, "'S' is not allowed"),
    ("9111000060003734VL", 17, "'V' is not allowed"),
    ("Z1110000600037341L", 1, "'Z' is not allowed"),
    ("911100006000373-1L", 16, "'-' is not allowed"),
    ("B1110000600037341L", 1, "registration authority code 'B'"),
    ("94110000600037341L", 2, "category '4' is not defined under authority 9"),
    ("Y2110000600037341L", 2, "category '2' is not defined under authority Y"),
    ("911A0000600037341L", 4, "division code must be digits"),
    ("91990000600037341L", 3, "does not start with a province code"),
    ("91110000600037342L", 17, "organisation code check character must be '1'"),
    ("91110000600037341M", 18, "check character must be 'L'"),
    ("9144030071526726XH", 18, "check character must be 'G'"),
]


@pytest.mark.parametrize(("code", "position", "rule"), INVALID)
def test_invalid_codes_name_position_and_rule(code: str, position: int | None, rule: str) -> None:
    with pytest.raises(CreditCodeError) as info:
        validate(code)
    assert info.value.position == position
    assert rule in str(info.value)
    where = "length" if position is None else f"position {position}"
    assert where in str(info.value)


def test_every_single_character_typo_in_the_check_is_caught() -> None:
    code = "91330100716105852F"
    for ch in "0123456789ABCDEFGHJKLMNPQRTUWXY":
        if ch != code[-1]:
            with pytest.raises(CreditCodeError, match="position 18"):
                validate(code[:-1] + ch)
