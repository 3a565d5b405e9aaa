"""Department names in the page's language, read once from subjects' departments table."""

from __future__ import annotations

from collections.abc import Iterable

from psycopg_pool import ConnectionPool

from subjects.departments import department_names


class DepartmentNames:
    """Chinese or English names of department codes; reloaded when an unknown code shows up."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        self.pool = pool
        self._names: dict[str, tuple[str, str]] = {}

    def _load(self) -> None:
        with self._pool.connection() as conn:
            self._names = department_names(conn)

    def name(self, code: str, locale: str) -> str:
        if code not in self._names:
            self._load()
        names = self._names.get(code)
        if names is None:
            return code
        return names[1] if locale == "zh_CN" else names[0]

    def names(self, codes: Iterable[str], locale: str) -> str:
        return (
            "、".join(self.name(c, locale) for c in codes)
            if locale == "zh_CN"
            else ", ".join(self.name(c, locale) for c in codes)
        )

    def codes(self) -> list[str]:
        if not self._names:
            self._load()
        return sorted(self._names)
