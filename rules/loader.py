"""Loads rule YAML files; every error names the file, the line and the problem."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from rules.safe_yaml import compose_and_load
from rules.spec import Rule, RuleFile, RuleKind

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RuleProblem:
    """One problem of a rule file: where and what."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


class RuleLoadError(Exception):
    """The rule set is invalid; `problems` lists every problem found."""

    def __init__(self, problems: Sequence[RuleProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A validated set of rules and the files they came from."""

    rules: tuple[Rule, ...]
    sources: dict[str, str]  # rule id -> "file:line"

    def get(self, rule_id: str) -> Rule | None:
        for r in self.rules:
            if r.id == rule_id:
                return r
        return None


def _lines(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            k = key.value if isinstance(key, yaml.ScalarNode) else str(key)
            out[(*path, k)] = key.start_mark.line + 1
            _lines(value, (*path, k), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, (*path, i), out)


def _line_of(loc: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int | None:
    # Pydantic puts the union member's tag (e.g. 'threshold') into the location: skip
    # components the document does not have, then fall back to the closest parent.
    path: tuple[Any, ...] = ()
    for part in loc:
        if (*path, part) in lines:
            path = (*path, part)
    return lines.get(path)


def _format(err: dict[str, Any]) -> str:
    loc = ".".join(str(p) for p in err["loc"] if p not in _KIND_TAGS)
    if err["type"] == "extra_forbidden":
        return f"{loc}: unknown key"
    if err["type"] == "missing":
        return f"{loc}: required"
    return f"{loc}: {err['msg']}" if loc else err["msg"]


_KIND_TAGS = frozenset(RuleKind)


def parse_rules(
    text: str, source: str, departments: Iterable[str]
) -> tuple[list[Rule], list[RuleProblem], dict[str, int]]:
    """Rules of one document (a mapping with `rules:`, a list, or one rule)."""
    try:
        node, data = compose_and_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        return [], [RuleProblem(source, line, f"not valid YAML: {err}")], {}
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        _lines(node, (), lines)
    if isinstance(data, list):
        data = {"rules": data}
        lines = {("rules", *k): v for k, v in lines.items()}
    elif isinstance(data, dict) and "rules" not in data:
        data = {"rules": [data]}
        lines = {("rules", 0, *k): v for k, v in lines.items()} | {("rules",): 1}
    if not isinstance(data, dict):
        return (
            [],
            [RuleProblem(source, 1, "expected a mapping with `rules:` or a list of rules")],
            {},
        )
    try:
        parsed = RuleFile.model_validate(data)
    except ValidationError as err:
        problems = []
        for detail in err.errors():
            e: dict[str, Any] = dict(detail)
            if e["type"] in ("union_tag_invalid", "union_tag_not_found"):
                e["loc"] = (*e["loc"], "kind")  # the problem is the `kind` key itself
            problems.append(RuleProblem(source, _line_of(tuple(e["loc"]), lines), _format(e)))
        return [], problems, {}
    known = set(departments)
    problems = []
    rule_lines: dict[str, int] = {}
    for i, rule in enumerate(parsed.rules):
        line = lines.get(("rules", i)) or 1
        rule_lines[rule.id] = line
        if rule.department not in known:
            problems.append(
                RuleProblem(
                    source,
                    lines.get(("rules", i, "department"), line),
                    f"rules.{i}.department: {rule.department!r} is not a known department "
                    f"({', '.join(sorted(known))})",
                )
            )
    return list(parsed.rules), problems, rule_lines


def load_directory(directory: Path, departments: Iterable[str]) -> RuleSet:
    """All `*.yaml`/`*.yml` files of `directory`; raises RuleLoadError listing every problem."""
    known = frozenset(departments)
    if not directory.is_dir():
        raise RuleLoadError([RuleProblem(str(directory), None, "rules directory not found")])
    rules: list[Rule] = []
    sources: dict[str, str] = {}
    problems: list[RuleProblem] = []
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            problems.append(RuleProblem(str(path), None, f"cannot read: {err.strerror}"))
            continue
        found, errs, lines = parse_rules(text, path.name, known)
        problems += errs
        for rule in found:
            where = f"{path.name}:{lines.get(rule.id, 1)}"
            if rule.id in sources:
                problems.append(
                    RuleProblem(
                        path.name,
                        lines.get(rule.id),
                        f"rule id {rule.id!r} is already defined at {sources[rule.id]}",
                    )
                )
                continue
            sources[rule.id] = where
            rules.append(rule)
    if problems:
        raise RuleLoadError(problems)
    log.info("loaded %d rules from %d files in %s", len(rules), len(files), directory)
    return RuleSet(tuple(rules), sources)


def parse_one(text: str, departments: Iterable[str], source: str = "<request>") -> Rule:
    """Exactly one rule from posted YAML or JSON; raises RuleLoadError."""
    rules, problems, _ = parse_rules(text, source, departments)
    if problems:
        raise RuleLoadError(problems)
    if len(rules) != 1:
        raise RuleLoadError([RuleProblem(source, 1, f"expected one rule, got {len(rules)}")])
    return rules[0]
