"""Who did something, as a person reads it: the key's (or person's) name, else the raw actor."""

from __future__ import annotations

from psycopg_pool import ConnectionPool

from api.names import key_names
from web.i18n import N_

SYSTEM = N_("offsite (automatic)")
KEY = N_("API key")  # an actor that is a machine's key: "张伟 (API 密钥 7)"


class People:
    def __init__(self, pool: ConnectionPool, gettext: object) -> None:
        self._pool = pool
        self._gettext = gettext
        self._cache: dict[str, str] = {}

    def name(self, actor: str) -> str:
        if actor in ("system", "rules"):  # the engine itself, not a person
            return self._gettext(SYSTEM)  # type: ignore[operator,no-any-return]
        if actor in self._cache:
            return self._cache[actor]
        shown = actor
        kind, _, ident = actor.partition(":")
        key_id = ident.split(" ", 1)[0]  # "key:7" or, as callers name keys now, "key:7 label"
        if kind == "key" and key_id.isdigit():
            with self._pool.connection() as conn:
                name = key_names(conn, [int(key_id)]).get(int(key_id))
            label = self._gettext(KEY)  # type: ignore[operator]
            shown = f"{name} ({label} {key_id})" if name else actor
        self._cache[actor] = shown
        return shown
