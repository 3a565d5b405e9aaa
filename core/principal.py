"""Who acts, for every package: a person or an API key of a department with a role, or the
system itself. The api package builds one per request; alerts and subjects record its name
and scope their reads and writes by its department."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["SYSTEM", "Principal", "PrincipalKind", "Role"]


class Role(StrEnum):
    """Roles a person or a key holds, in rising order of what they may do."""

    VIEWER = "viewer"
    OFFICER = "officer"
    ADMIN = "admin"  # a department's admin: their own department only, like everyone
    PLATFORM_ADMIN = "platform_admin"  # the city platform's operator: binds unbound devices

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Role.VIEWER: 0, Role.OFFICER: 1, Role.ADMIN: 2, Role.PLATFORM_ADMIN: 3}


class PrincipalKind(StrEnum):
    PERSON = "person"
    KEY = "key"
    SYSTEM = "system"  # the server's own clock and clue events


@dataclass(frozen=True, slots=True)
class Principal:
    """Who acts. Every read and write is scoped to `department`; `name` goes into records."""

    name: str  # how timelines and the audit chain name it: "张伟 (zhangwei)", "key:7 label"
    department: str  # "" for the system, which takes part in every department's alerts
    role: Role = Role.OFFICER
    kind: PrincipalKind = PrincipalKind.KEY
    id: int = 0  # the user id of a person, the key id of a key
    display_name: str = ""  # a person's name, a key's label
    login: str | None = None  # people only
    session_id: int | None = None  # people signed in by cookie
    csrf_token: str | None = None  # the session's; key requests need none

    @classmethod
    def person(
        cls,
        id: int,
        display_name: str,
        login: str,
        department: str,
        role: Role,
        session_id: int | None = None,
        csrf_token: str | None = None,
    ) -> Principal:
        return cls(f"{display_name} ({login})", department, role, PrincipalKind.PERSON, id,
                   display_name, login, session_id, csrf_token)  # fmt: skip

    @classmethod
    def key(cls, id: int, label: str, department: str, role: Role) -> Principal:
        return cls(f"key:{id} {label}".rstrip(), department, role, PrincipalKind.KEY, id, label)

    @property
    def is_system(self) -> bool:
        return self.kind is PrincipalKind.SYSTEM

    @property
    def is_admin(self) -> bool:
        """A department's admin or the platform's: may link other departments to a subject."""
        return self.role.rank >= Role.ADMIN.rank

    @property
    def is_platform_admin(self) -> bool:
        """The city platform's operator: sees every subject's file and links, and may link,
        approve and end supervision for any department (it has no subjects of its own)."""
        return self.role is Role.PLATFORM_ADMIN

    @property
    def scope(self) -> str | None:
        """The department subject lookups are limited to; None for the platform admin."""
        return None if self.is_platform_admin else self.department

    @property
    def key_id(self) -> int | None:
        return self.id if self.kind is PrincipalKind.KEY else None

    @property
    def user_id(self) -> int | None:
        return self.id if self.kind is PrincipalKind.PERSON else None


SYSTEM = Principal("system", "", Role.VIEWER, PrincipalKind.SYSTEM)
