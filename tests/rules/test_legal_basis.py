"""Every rule of the sample pack cites a text in force on each date it judges.

The pack's YAML is read as data (not through the rule models), so this checks what officers
and reviewers read. A rule judges today (never before the review date below), and a rule with
dated limits judges each period: its first and its last day (today for an open end, a
day of stored history for an open start).

- On each such date the legal basis names at least one text in force then.
- A text that is no longer in force on its own (absorbed by the 《生态环境法典》, replaced by a
  new edition or a law) is cited only for a period that ends while it was in force, or marked
  as the former text (`原为《…》`, `取代《…》`), never as the basis of today's judgment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

PACK = Path(__file__).parents[2] / "deploy" / "rules"
REVIEWED = date(2026, 12, 2)
# A period with no first day also judges stored history: a day of it, before every 2026 change.
HISTORY = date(2025, 12, 1)


@dataclass(frozen=True)
class Text:
    name: str
    pattern: str  # on the basis with all whitespace removed (folded YAML adds spaces)
    in_force_from: date | None = None
    in_force_until: date | None = None  # last day it was in force on its own

    def in_force(self, day: date) -> bool:
        return (self.in_force_from is None or self.in_force_from <= day) and (
            self.in_force_until is None or day <= self.in_force_until
        )


_DASH = "[—–-]"
# Dates: the Code 2026-08-15, the hazardous chemicals law 2026-05-01, GB 3095-2026 and
# HJ 633-2026 from 2026-03-01, the monitoring regulation 2026-01-01 (docs/rules.md, sources).
CODE_DAY = date(2026, 8, 15)
TEXTS = (
    Text("生态环境法典", r"《(中华人民共和国)?生态环境法典》", CODE_DAY),
    Text("环境保护法", r"《(中华人民共和国)?环境保护法》", None, date(2026, 8, 14)),
    Text("大气污染防治法", r"《(中华人民共和国)?大气污染防治法》", None, date(2026, 8, 14)),
    Text("水污染防治法", r"《(中华人民共和国)?水污染防治法》", None, date(2026, 8, 14)),
    Text("危险化学品安全法", r"《(中华人民共和国)?危险化学品安全法》", date(2026, 5, 1)),
    Text("危险化学品安全管理条例", r"《危险化学品安全管理条例》", None, date(2026, 4, 30)),
    Text("GB 3095-2026", rf"GB3095{_DASH}2026", date(2026, 3, 1)),
    Text("GB 3095-2012", rf"GB3095{_DASH}2012", date(2016, 1, 1), date(2026, 2, 28)),
    Text("HJ 633-2026", rf"HJ633{_DASH}2026", date(2026, 3, 1)),
    Text("HJ 633-2012", rf"HJ633{_DASH}2012", date(2016, 1, 1), date(2026, 2, 28)),
    Text("生态环境监测条例", r"《生态环境监测条例》", date(2026, 1, 1)),
    Text("排污许可管理条例", r"《排污许可管理条例》", date(2021, 3, 1)),
    Text("安全生产法", r"《(中华人民共和国)?安全生产法》", date(2021, 9, 1)),
    Text("标记规则", r"《污染物排放自动监测设备标记规则》", date(2023, 1, 1)),
    Text("GB/T 50493-2019", rf"GB/T50493{_DASH}2019"),
    Text("GB 30871-2022", rf"GB30871{_DASH}2022"),
    Text("AQ 3036-2010", rf"AQ3036{_DASH}2010"),
)
# A mention of a retired text marked as the former one, right before it.
_FORMER = re.compile(r"(原为|原|取代|替代)$")


def judged_days(rule: dict[str, Any], today: date) -> list[date]:
    limit = rule.get("limit")
    if not isinstance(limit, list):
        return [today]
    days: list[date] = []
    for period in limit:
        start, end = period.get("valid_from"), period.get("valid_until")
        days += [d for d in (start, end) if d is not None]
        if start is None:
            days.append(min(HISTORY, end) if end is not None else HISTORY)
        if end is None:
            days.append(max(start or today, today))
    return sorted(set(days))


def problems(rule: dict[str, Any], today: date) -> list[str]:
    basis = re.sub(r"\s+", "", str(rule.get("legal_basis", "")))
    days = judged_days(rule, today)
    found: list[str] = []
    for day in days:
        if not any(re.search(t.pattern, basis) and t.in_force(day) for t in TEXTS):
            found.append(f"{rule['id']}: no cited text is in force on {day}")
    for text in TEXTS:
        if text.in_force_until is None:
            continue
        until = text.in_force_until
        for m in re.finditer(text.pattern, basis):
            if _FORMER.search(basis[: m.start()]):
                continue  # quoted as the former text
            if any(day <= until for day in days):
                continue  # the rule judges days when it was in force
            found.append(
                f"{rule['id']}: cites {text.name}, not in force on its own after {until},"
                f" for days from {days[0]}"
            )
    return found


def pack_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for path in sorted(PACK.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        rules += data["rules"] if isinstance(data, dict) else data
    return rules


def test_every_pack_rule_cites_texts_in_force_on_the_days_it_judges() -> None:
    today = max(date.today(), REVIEWED)
    rules = pack_rules()
    assert len(rules) >= 20
    assert [p for r in rules for p in problems(r, today)] == []


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        # The Environmental Protection Law as a separate law after the Code took effect.
        (
            {"id": "epl", "legal_basis": "《中华人民共和国环境保护法》第四十二条"},
            [
                "epl: no cited text is in force on 2026-12-02",
                "epl: cites 环境保护法, not in force on its own after 2026-08-14,"
                " for days from 2026-12-02",
            ],
        ),
        # Citing the Code beside it does not make the absorbed law a basis of today.
        (
            {
                "id": "both",
                "legal_basis": "《生态环境法典》；《中华人民共和国\n大气污染防治法》第七十七条",
            },
            [
                "both: cites 大气污染防治法, not in force on its own after 2026-08-14,"
                " for days from 2026-12-02"
            ],
        ),
        # GB 3095-2012 after 2026-03-01, for an undated limit.
        (
            {"id": "old-aq", "legal_basis": "GB 3095—2012 表1 二级", "limit": 75},
            [
                "old-aq: no cited text is in force on 2026-12-02",
                "old-aq: cites GB 3095-2012, not in force on its own after 2026-02-28,"
                " for days from 2026-12-02",
            ],
        ),
        # A dated period that only reaches into the new standard's time needs the new text.
        (
            {
                "id": "dated",
                "legal_basis": "GB 3095—2012 表1",
                "limit": [
                    {"value": 75, "valid_until": date(2026, 2, 28)},
                    {"value": 60, "valid_from": date(2026, 3, 1)},
                ],
            },
            [
                "dated: no cited text is in force on 2026-03-01",
                "dated: no cited text is in force on 2026-12-02",
            ],
        ),
        # The same with both editions cited: each period has its text.
        (
            {
                "id": "ok",
                "legal_basis": "GB 3095—2026；2026-03-01前按 GB 3095—2012",
                "limit": [
                    {"value": 75, "valid_until": date(2026, 2, 28)},
                    {"value": 60, "valid_from": date(2026, 3, 1)},
                ],
            },
            [],
        ),
        # Marked as the former text: fine.
        (
            {
                "id": "former",
                "legal_basis": "《生态环境法典》第二编，该规定原为《大气污染防治法》第七十七条",
            },
            [],
        ),
        (
            {"id": "hc", "legal_basis": "《危险化学品安全管理条例》第二十条"},
            [
                "hc: no cited text is in force on 2026-12-02",
                "hc: cites 危险化学品安全管理条例, not in force on its own after 2026-04-30,"
                " for days from 2026-12-02",
            ],
        ),
    ],
)
def test_the_check_fails_on_retired_texts(rule: dict[str, Any], expected: list[str]) -> None:
    assert problems(rule, REVIEWED) == expected
