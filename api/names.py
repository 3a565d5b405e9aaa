"""Display names of the actors recorded on timelines and audit entries ("key:12" -> its name)."""

from __future__ import annotations

from typing import Any

import psycopg


def key_names(conn: psycopg.Connection[Any], key_ids: list[int]) -> dict[int, str]:
    rows = conn.execute("SELECT id, name FROM api_keys WHERE id = ANY(%s)", (key_ids,)).fetchall()
    return {int(r[0]): str(r[1]) for r in rows}
