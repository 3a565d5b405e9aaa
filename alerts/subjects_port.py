"""What alerts read of the subject library, as small Protocols the subjects package satisfies."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from subjects.models import CreditGrade, Grade


class SubjectView(Protocol):
    """A subject as alerts need it: where it is, its grade and who supervises it now."""

    @property
    def credit_code(self) -> str: ...
    @property
    def grid(self) -> str: ...
    @property
    def industry(self) -> str: ...
    @property
    def credit_grade(self) -> Grade: ...
    @property
    def tags(self) -> frozenset[str]: ...
    @property
    def departments(self) -> frozenset[str]: ...


class SubjectLookup(Protocol):
    """Reads subjects: one by credit code, or all a department supervises now."""

    def subject(self, credit_code: str) -> SubjectView | None: ...

    def subjects_of(self, department: str) -> Sequence[SubjectView]: ...


class SubjectChange(Protocol):
    """One edit of the subject library (subjects.models.SubjectChanged has this shape)."""

    @property
    def kind(self) -> str: ...
    @property
    def credit_code(self) -> str: ...
    @property
    def actor(self) -> str: ...
    @property
    def department(self) -> str: ...
    @property
    def at(self) -> datetime: ...
    @property
    def before(self) -> Mapping[str, Any] | None: ...
    @property
    def after(self) -> Mapping[str, Any] | None: ...
    @property
    def device_id(self) -> str | None: ...
    @property
    def linked_department(self) -> str | None: ...
    @property
    def source(self) -> str: ...


def is_cross_department(subject: SubjectView | None) -> bool:
    """In the cross-department library: supervised by two or more departments now."""
    return subject is not None and len(subject.departments) >= 2


@dataclass(frozen=True, slots=True)
class StaticSubject:
    """A subject held in memory (bench, tests, or a deployment without the library)."""

    credit_code: str
    grid: str = ""
    industry: str = ""
    credit_grade: Grade = CreditGrade.B
    tags: frozenset[str] = frozenset()
    departments: frozenset[str] = field(default_factory=frozenset)


class StaticSubjects:
    """A SubjectLookup over a fixed set of subjects."""

    def __init__(self, subjects: Iterable[SubjectView] = ()) -> None:
        self._by_code: dict[str, SubjectView] = {s.credit_code: s for s in subjects}

    def put(self, subject: SubjectView) -> None:
        self._by_code[subject.credit_code] = subject

    def subject(self, credit_code: str) -> SubjectView | None:
        return self._by_code.get(credit_code)

    def subjects_of(self, department: str) -> Sequence[SubjectView]:
        return sorted(
            (s for s in self._by_code.values() if department in s.departments),
            key=lambda s: s.credit_code,
        )
