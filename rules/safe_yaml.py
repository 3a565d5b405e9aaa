"""YAML for untrusted text: safe types, bounded nesting, bounded alias expansion."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from yaml.events import AliasEvent

# A rule file is a few hundred nodes deep at most a handful of levels; these bounds leave
# room for large rule packs and refuse the documents built to exhaust memory or the stack.
MAX_DEPTH = 64
MAX_ALIASES = 100
MAX_NODES = 100_000


class YamlLimitError(yaml.YAMLError):
    """The document exceeds a bound (depth, aliases or expanded size); `problem_mark` says where."""

    def __init__(self, problem: str, mark: yaml.Mark | None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark

    def __str__(self) -> str:
        where = f" (line {self.problem_mark.line + 1})" if self.problem_mark else ""
        return f"{self.problem}{where}"


@dataclass(frozen=True, slots=True)
class YamlLimits:
    """Bounds one load enforces."""

    max_depth: int = MAX_DEPTH
    max_aliases: int = MAX_ALIASES
    max_nodes: int = MAX_NODES


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses deep nesting and counts aliases while composing."""

    limits = YamlLimits()

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(AliasEvent):
            self._aliases += 1
            if self._aliases > self.limits.max_aliases:
                raise YamlLimitError(
                    f"more than {self.limits.max_aliases} aliases (*name) are not accepted",
                    self._mark(),
                )
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > self.limits.max_depth:
            raise YamlLimitError(f"nested deeper than {self.limits.max_depth} levels", self._mark())
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def _mark(self) -> yaml.Mark | None:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        mark: yaml.Mark | None = event.start_mark
        return mark


def _expanded_size(root: yaml.Node, limit: int) -> None:
    """Refuse a tree whose aliases would expand past `limit` nodes (or refer to themselves).

    Sizes of shared (aliased) nodes are memoised, so this costs one pass over the distinct
    nodes however large the expansion would be.
    """
    sizes: dict[int, int] = {}
    open_: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_:
            raise YamlLimitError("an alias refers to a node that contains it", node.start_mark)
        open_.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(item) for item in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        open_.discard(key)
        if total > limit:
            raise YamlLimitError(
                f"the document expands to more than {limit} nodes (aliases multiply it)",
                node.start_mark,
            )
        sizes[key] = total
        return total

    size(root)


def compose_and_load(text: str, limits: YamlLimits | None = None) -> tuple[yaml.Node | None, Any]:
    """The node tree (for line numbers) and the data of one document, within `limits`.

    Raises yaml.YAMLError (YamlLimitError for a bound) like yaml.safe_load would.
    """
    bounds = limits or YamlLimits()
    loader = _BoundedLoader(text)
    loader.limits = bounds
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        _expanded_size(node, bounds.max_nodes)
        return node, loader.construct_document(node)
    finally:
        loader.dispose()


def safe_load(text: str, limits: YamlLimits | None = None) -> Any:
    """Like yaml.safe_load, within `limits`."""
    return compose_and_load(text, limits)[1]
