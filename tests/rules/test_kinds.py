"""Every rule kind of the spec union is one entry of the kind registry, and only one."""

from __future__ import annotations

from typing import Any, get_args

from rules.bound import Bound
from rules.kinds import KINDS
from rules.loader import parse_one
from rules.spec import Rule, RuleKind
from tests.rules.test_engine import CREDIT


def _union_members() -> list[Any]:
    union, _discriminator = get_args(Rule)
    return list(get_args(union))


def test_every_member_of_the_spec_union_has_its_entry() -> None:
    members = _union_members()
    tags = {}
    for model in members:
        (tag,) = get_args(model.model_fields["kind"].annotation)
        tags[tag] = model
    assert set(tags) == {k.value for k in RuleKind}
    assert set(KINDS) == set(RuleKind)
    for tag, model in tags.items():
        assert KINDS[RuleKind(tag)].spec is model, tag


def test_a_bound_rule_carries_its_kind_entry() -> None:
    rule = parse_one(
        "id: r\nversion: 1\ndepartment: EEB\ntitle: t\nlegal_basis: b\nseverity: major\n"
        "selector: {metric: x}\nkind: rate\nop: '>'\nlimit: 5\n",
        ["EEB"],
    )
    b = Bound(rule, "d1", None, CREDIT, 10)
    assert b.kind is RuleKind.RATE
    assert b.entry is KINDS[RuleKind.RATE]
    assert b.sample is KINDS[RuleKind.RATE].sample
    assert b.replayed
    assert b.valid_flags == frozenset({"N"})
