"""The committed clue changes, read back in commit order (rules.models.ClueLedger).

Its own object, not the rule service's: alerts read it and are built before the rules,
which get the alerts as their sink at construction.
"""

from __future__ import annotations

from psycopg_pool import ConnectionPool

from rules.models import ClueEvent
from rules.store import changes_after, clue_by_id


class ClueLedgerReader:
    """Reads the clue ledger through a pool."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    def clue_changes_after(self, seq: int, limit: int) -> list[ClueEvent]:
        with self.pool.connection() as conn:
            return changes_after(conn, seq, limit)

    def clue(self, clue_id: int) -> ClueEvent | None:
        with self.pool.connection() as conn:
            return clue_by_id(conn, clue_id)
