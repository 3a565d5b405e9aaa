"""The HJ 212 code tables (pollutants, legacy 2005 codes, CN, ST) loaded from codes.yaml."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml


@dataclass(frozen=True, slots=True)
class Pollutant:
    code: str
    name: str
    en: str
    unit: str
    cou_unit: str | None


@dataclass(frozen=True, slots=True)
class CodeTables:
    pollutants: dict[str, Pollutant]
    legacy: dict[str, str]
    commands: dict[str, str]
    stored: dict[str, str]  # CN -> rtd | minute | hour | day
    systems: dict[str, str]

    def metric_code(self, code: str) -> str:
        """The 2017 code a (possibly 2005-era) code stands for; unknown legacy codes are
        kept apart as `legacy.<code>` rather than guessed."""
        mapped = self.legacy.get(code)
        if mapped is not None:
            return mapped
        if _LEGACY_SHAPE.fullmatch(code):
            return f"legacy.{code}"
        return code


# The shape of HJ/T 212-2005 codes (001, 01, B01, S08, LD4); 2017 codes look like w01018.
_LEGACY_SHAPE = re.compile(r"\d{2,3}|[A-Z]{1,2}\d{1,2}")


@cache
def tables() -> CodeTables:
    raw: dict[str, Any] = yaml.safe_load(
        resources.files("hj212").joinpath("codes.yaml").read_text(encoding="utf-8")
    )
    pollutants = {
        code: Pollutant(code, p["name"], p["en"], p["unit"], p.get("cou_unit"))
        for code, p in raw["pollutants"].items()
    }
    commands = {cn: c["name"] for cn, c in raw["commands"].items()}
    stored = {cn: c["store"] for cn, c in raw["commands"].items() if "store" in c}
    return CodeTables(
        pollutants=pollutants,
        legacy={str(k): str(v) for k, v in raw["legacy"].items()},
        commands=commands,
        stored=stored,
        systems={str(k): str(v) for k, v in raw["systems"].items()},
    )
