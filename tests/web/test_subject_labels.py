"""The subject file's words: every import reason and form error has its Chinese label, and
the forms turn bad input into those codes (no server needed)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from zoneinfo import ZoneInfo

import pytest

from subjects.credit_code import make
from subjects.import_report import ImportReason
from web import labels
from web.i18n import translations
from web.pages import subject_forms as forms

ZH = translations("zh_CN").gettext
EN = translations("en").gettext


def test_every_importer_reason_code_has_a_zh_label() -> None:
    missing = [r.value for r in ImportReason if r.value not in labels.IMPORT_REASONS]
    assert missing == []
    for reason in ImportReason:
        message = labels.IMPORT_REASONS[reason.value]
        zh = ZH(message)
        assert zh != message, f"{reason.value} has no Chinese translation"
        assert re.search(r"[\u4e00-\u9fff]", zh), zh
        # The translation names the same values as the English label.
        assert sorted(re.findall(r"%\((\w+)\)s", zh)) == sorted(
            re.findall(r"%\((\w+)\)s", message)
        ), reason.value
        assert EN(message) == message


@pytest.mark.parametrize(
    "table", ["form_error", "subject_done", "subject_change", "subject_field", "credit_source"]
)
def test_subject_file_tables_are_translated(table: str) -> None:
    untranslated = [c for c, m in labels.TABLES[table].items() if ZH(m) == m]
    assert untranslated == []


def test_describe_fills_the_values_and_survives_a_missing_one() -> None:
    describe = labels.formatter(ZH)
    text = describe("import_reason", "cell_count", {"cells": 2, "header": 5})
    assert text == "本行有 2 个单元格，表头有 5 个。"
    assert "header" in describe("import_reason", "cell_count", {"cells": 2})
    assert labels.formatter(EN)("import_reason", "cell_count", {"cells": 2, "header": 5}) == (
        "This row has 2 cells; the header has 5."
    )


def _codes(errors: forms.Errors) -> dict[str, str]:
    for e in errors.values():
        assert e.code in labels.TABLES[e.table], (e.table, e.code)
    return {k: e.code for k, e in errors.items()}


def test_basic_form_checks_coordinates_and_name() -> None:
    base = {"name": "厂", "address": "", "grid": "", "industry": ""}
    patch, errors = forms.basic_patch({**base, "latitude": "31.3", "longitude": "120.7"})
    assert errors == {}
    assert patch is not None
    assert (patch.latitude, patch.longitude) == (31.3, 120.7)
    _, errors = forms.basic_patch({**base, "latitude": "95", "longitude": "120"})
    assert _codes(errors) == {"latitude": "latitude_range"}
    _, errors = forms.basic_patch({**base, "latitude": "31", "longitude": ""})
    assert _codes(errors) == {"longitude": "give_both_coordinates"}
    _, errors = forms.basic_patch({**base, "latitude": "北纬31", "longitude": "nan"})
    assert _codes(errors) == {"latitude": "not_a_number", "longitude": "not_a_number"}
    _, errors = forms.basic_patch({**base, "name": "  "})
    assert _codes(errors) == {"name": "required"}
    _, errors = forms.basic_patch({**base, "grid": "G" * 65})
    assert _codes(errors) == {"grid": "too_long"}


def test_limits_credit_link_and_binding_forms() -> None:
    patch, errors = forms.limits_patch("permit.cod_mg_l = 50\n\ntank.max_temp_c=60.5\n")
    assert errors == {}
    assert patch is not None
    assert patch.attributes == {"permit.cod_mg_l": 50.0, "tank.max_temp_c": 60.5}
    assert _codes(forms.limits_patch("permit.cod 50")[1]) == {"attributes": "limit_line"}
    assert _codes(forms.limits_patch("bad key! = 5")[1]) == {"attributes": "invalid_attribute"}
    assert _codes(forms.limits_patch("a = x")[1]) == {"attributes": "not_a_number"}
    patch, errors = forms.credit_patch({"credit_scheme": "jiangsu_env", "credit_grade": "red"})
    assert patch is not None
    assert errors == {}
    bad = forms.credit_patch({"credit_scheme": "abcd", "credit_grade": "red"})[1]
    assert _codes(bad) == {"credit_grade": "invalid_credit_grade"}
    zone = ZoneInfo("Asia/Shanghai")
    data, errors = forms.link_in({"department": "amr", "since": "2030-01-01T08:00"}, {"AMR"}, zone)
    assert data is not None
    assert data.since is not None
    assert data.since.utcoffset() is not None
    assert data.since.isoformat() == "2030-01-01T08:00:00+08:00"
    _, errors = forms.link_in({"department": "XYZ", "until": "明天"}, {"AMR"}, zone)
    assert _codes(errors) == {"department": "unknown_department", "until": "invalid_time"}
    code = make("9", "1", "320500", "MA1MXXXX")
    device, _binding, errors = forms.binding_in(
        {"device_id": "gas-1", "role": "gas_detector"}, code
    )
    assert (device, errors) == ("gas-1", {})
    _, _, errors = forms.binding_in({"device_id": "bad id", "role": "Gas!"}, code)
    assert _codes(errors) == {"device_id": "invalid_device_id", "role": "invalid_role"}


def test_a_library_refusal_reads_as_its_sentence_with_department_names() -> None:
    from subjects.errors import SubjectConflictError, SubjectInvalidError, SubjectRefusal

    names = {"FIN": "财政局（已停用）", "FRB": "市金融监管局", "EEB": "市生态环境局",
             "EMB": "市应急局"}  # fmt: skip

    def named(codes: Iterable[str]) -> str:
        return "、".join(names.get(c, c) for c in codes)

    describe = labels.formatter(ZH)
    retired = SubjectInvalidError(
        "department", "FIN is retired", SubjectRefusal.DEPARTMENT_RETIRED,
        {"department": "FIN", "successor": "FRB"},
    )  # fmt: skip
    field, error = forms.refusal(retired, "form", {"department"}, named)
    assert field == "department"  # the form's own field, as the library names it
    assert describe(error.table, error.code, dict(error.params)) == (
        "财政局（已停用） 已撤销，不再接受新的监管关联（承继部门：市金融监管局）。"
    )
    assert error.params["detail"] == "department: FIN is retired"  # English, for logs only
    shared = SubjectConflictError(
        SubjectRefusal.SUBJECT_SHARED, "shared", {"departments": "EEB,EMB"}
    )
    field, error = forms.refusal(shared, "form", (), named)
    assert field == "form"
    assert describe(error.table, error.code, dict(error.params)).startswith(
        "市生态环境局、市应急局也在监管该对象"
    )
    # A placeholder is no department code: shown as it is.
    none = SubjectInvalidError(
        "department",
        "x",
        SubjectRefusal.DEPARTMENT_RETIRED,
        {"department": "FIN", "successor": "—"},
    )
    assert forms.refusal(none, "form", (), named)[1].params["successor"] == "—"
