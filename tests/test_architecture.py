"""docs/architecture.md is the rule: imports between packages, table owners, routers' SQL.

The table in the document is parsed here, so changing the architecture means changing the
page; a new package fails until it has a row there.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
# Uppercase SQL keywords, as every statement in the code spells them (prose says "from").
TABLE_USE = re.compile(r"\b(?:FROM|JOIN|INTO|UPDATE|TABLE)\s+([a-z_][a-z_0-9]*)")
STATEMENT = re.compile(r"\b(?:SELECT\b[\s\S]*\bFROM|INSERT INTO|UPDATE [a-z_]+ SET|DELETE FROM)\b")
ROUTERS = ("api/routers", "web/pages")


@cache
def rows() -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """package -> (packages it may import, tables it owns), from the document's table."""
    found: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].startswith("`"):
            continue
        name, _job, imports, tables = cells
        allowed = frozenset(re.findall(r"`([a-z_0-9]+)`", imports))
        if imports == "every package":
            allowed = frozenset({"*"})
        found[name.strip("`")] = (allowed, frozenset(re.findall(r"`([a-z_0-9]+)`", tables)))
    return found


def packages() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return [p for p in config["tool"]["mypy"]["packages"] if p != "tests"]


def sources(package: str) -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted((ROOT / package).rglob("*.py")):
        yield path, ast.parse(path.read_text(), str(path))


def strings(tree: ast.Module) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def owner_of() -> dict[str, str]:
    return {table: pkg for pkg, (_, tables) in rows().items() for table in tables}


def test_every_package_has_a_row() -> None:
    missing = sorted(set(packages()) - set(rows()))
    assert not missing, f"add {missing} to the table in docs/architecture.md"


def test_every_table_a_migration_creates_has_an_owner() -> None:
    created = set()
    for sql in ROOT.glob("*/migrations/*.sql"):
        created |= set(re.findall(r"CREATE (?:TABLE|VIEW)(?: IF NOT EXISTS)? ([a-z_0-9]+)",
                                  sql.read_text()))  # fmt: skip
    unowned = sorted(created - set(owner_of()))
    assert not unowned, f"name the owner of {unowned} in docs/architecture.md"


@pytest.mark.parametrize("package", packages())
def test_imports_follow_the_arrows(package: str) -> None:
    allowed, _ = rows()[package]
    if "*" in allowed:
        return
    ours = set(packages())
    wrong = []
    for path, tree in sources(package):
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
                names: list[str] = []
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules = [node.module]
                names = [a.name for a in node.names]
            else:
                continue
            for module in modules:
                top, *inner = module.split(".")
                if top not in ours or top == package:
                    continue
                where = f"{path.relative_to(ROOT)}:{node.lineno} imports {module}"
                if top not in allowed:
                    wrong.append(f"{where}: {package} may not import {top}")
                private = [n for n in [*inner, *names] if n.startswith("_")]
                if private:
                    wrong.append(f"{where}: {private} are {top}'s internals")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("package", packages())
def test_a_package_reads_and_writes_only_its_own_tables(package: str) -> None:
    owners = owner_of()
    wrong = [
        f"{path.relative_to(ROOT)}:{line}: {table} belongs to {owners[table]}"
        for path, tree in sources(package)
        for line, text in strings(tree)
        for table in TABLE_USE.findall(text)
        if owners.get(table, package) != package
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("folder", ROUTERS)
def test_routers_run_no_sql(folder: str) -> None:
    wrong = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        where = path.relative_to(ROOT)
        wrong += [f"{where}:{line}: SQL" for line, text in strings(tree) if STATEMENT.search(text)]
        wrong += [
            f"{where}:{node.lineno}: .{node.attr}()"
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr in {"execute", "executemany"}
        ]
    assert not wrong, "\n".join(wrong)


def test_the_checks_see_a_breach() -> None:
    # The patterns themselves: a check that matches nothing would pass for ever.
    assert TABLE_USE.findall("SELECT a FROM devices d JOIN readings r ON true") == [
        "devices",
        "readings",
    ]
    assert STATEMENT.search("UPDATE alerts SET state = 'open'")
    assert not STATEMENT.search("Readings from the devices of a department")
    assert owner_of()["departments"] == "subjects"
