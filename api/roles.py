"""Roles a person or a key holds, in rising order of what they may do."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    OFFICER = "officer"
    ADMIN = "admin"  # a department's admin: their own department only, like everyone
    PLATFORM_ADMIN = "platform_admin"  # the city platform's operator: binds unbound devices

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Role.VIEWER: 0, Role.OFFICER: 1, Role.ADMIN: 2, Role.PLATFORM_ADMIN: 3}


def parse_role(text: str, error: type[ValueError]) -> Role:
    """The role named by `text`, or `error` listing the roles there are."""
    try:
        return Role(text)
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise error(f"role {text!r} is not one of {roles}") from None
