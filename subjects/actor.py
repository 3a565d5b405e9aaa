"""Who edits the subject library: a department, a name for the records, and a role."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Actor:
    """Who edits: `department` scopes everything; admins may link other departments.

    `platform` is the city platform's operator: it sees every subject's file and links, and
    may link, approve and end supervision for any department (it has no subjects of its own).
    """

    department: str
    name: str
    admin: bool = False
    # The city platform's operator: binds new devices to any department's subject.
    platform: bool = False

    @property
    def scope(self) -> str | None:
        """The department lookups are limited to; None for the platform admin."""
        return None if self.platform else self.department
