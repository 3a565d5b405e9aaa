"""Rule files: validation errors name the file, the line and the problem; the sample pack loads."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from rules.loader import RuleLoadError, load_directory, parse_one
from rules.spec import ThresholdRule, parse_duration
from tests.rules.support import COD_HIGH, DEPARTMENTS

# The same rule in a file of rules (a YAML list), waiting five minutes.
GOOD = "rules:\n  - " + textwrap.indent(COD_HIGH + "for: 5m\n", "    ").lstrip()


def _load(tmp_path: Path, **files: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    load_directory(tmp_path, DEPARTMENTS)


def _problems(tmp_path: Path, **files: str) -> list[str]:
    with pytest.raises(RuleLoadError) as err:
        _load(tmp_path, **files)
    return [str(p) for p in err.value.problems]


@pytest.mark.parametrize(
    ("replace", "expected"),
    [
        ("    limit: 50\n", "a.yaml:2: rules.0.limit: required"),
        ("    for: 5m\n", "a.yaml:12: rules.0.for: Value error, 'soon' is not a duration"),
        ("    severity: major\n", "a.yaml:7: rules.0.severity: Input should be"),
        ("    selector: {metric: cod}\n", "a.yaml:8: rules.0.selector.colour: unknown key"),
        ("    department: EEB\n", "a.yaml:4: rules.0.department: 'XYZ' is not a known department"),
        ("    kind: threshold\n", "a.yaml:9: rules.0.kind: Input tag 'magic' found"),
        ('    op: ">"\n', "a.yaml:10: rules.0.op: Input should be"),
    ],
)
def test_errors_name_file_line_and_problem(tmp_path: Path, replace: str, expected: str) -> None:
    broken = {
        "    limit: 50\n": "",
        "    for: 5m\n": "    for: soon\n",
        "    severity: major\n": "    severity: dire\n",
        "    selector: {metric: cod}\n": "    selector: {metric: cod, colour: red}\n",
        "    department: EEB\n": "    department: XYZ\n",
        "    kind: threshold\n": "    kind: magic\n",
        '    op: ">"\n': '    op: "=>"\n',
    }[replace]
    problems = _problems(tmp_path, **{"a.yaml": GOOD.replace(replace, broken)})
    assert any(p.startswith(expected) for p in problems), problems


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    problems = _problems(tmp_path, **{"a.yaml": GOOD + "  - id: [unclosed\n"})
    assert problems[0].startswith("a.yaml:14: not valid YAML"), problems


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    problems = _problems(tmp_path, **{"a.yaml": GOOD, "b.yaml": GOOD})
    assert problems == ["b.yaml:2: rule id 'cod-high' is already defined at a.yaml:2"]


def test_good_file_loads_with_aliases(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD, encoding="utf-8")
    rs = load_directory(tmp_path, DEPARTMENTS)
    rule = rs.rules[0]
    assert isinstance(rule, ThresholdRule)
    assert rule.hold == 300.0
    assert rs.sources == {"cod-high": "a.yaml:2"}


def test_cross_field_checks() -> None:
    with pytest.raises(RuleLoadError, match=r"clear 60\.0 must not be above the limit 50\.0"):
        parse_one(GOOD.replace("limit: 50", "limit: 50\n    clear: 60"), DEPARTMENTS)
    with pytest.raises(RuleLoadError, match=r"selector\.metric is required"):
        parse_one(GOOD.replace("selector: {metric: cod}", "selector: {}"), DEPARTMENTS)
    with pytest.raises(RuleLoadError, match="a sliding window needs `size`"):
        parse_one(
            GOOD.replace(
                "kind: threshold",
                "kind: window\n    agg: avg\n    align: sliding\n    expected_interval: 1m",
            ),
            DEPARTMENTS,
        )
    with pytest.raises(RuleLoadError, match="unknown time zone"):
        parse_one(
            GOOD
            + "    schedule: {timezone: Mars/Olympus, windows: [{start: '08:00', end: '18:00'}]}\n",
            DEPARTMENTS,
        )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(30, 30.0), ("90s", 90.0), ("5m", 300.0), ("1.5h", 5400.0), ("1d", 86400.0)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_sample_pack_loads() -> None:
    rs = load_directory(Path(__file__).parents[2] / "deploy" / "rules", DEPARTMENTS)
    kinds = {r.kind for r in rs.rules}
    assert kinds == {"threshold", "window", "rate", "absence", "flatline", "composite", "detection"}
    assert all(len(r.legal_basis) > 10 for r in rs.rules)
