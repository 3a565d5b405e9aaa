"""Roles a person or a key holds, in rising order of what they may do."""

from __future__ import annotations

from core.principal import Role

__all__ = ["Role", "parse_role"]


def parse_role(text: str, error: type[ValueError]) -> Role:
    """The role named by `text`, or `error` listing the roles there are."""
    try:
        return Role(text)
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise error(f"role {text!r} is not one of {roles}") from None
