"""An in-memory book of clue episodes with the same semantics as the clue table (dry runs)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rules.engine import ClueOp
from rules.evaluate import ClueAction, TriggerItem


@dataclass(slots=True)
class Episode:
    fingerprint: str
    started_at: float
    ended_at: float | None
    withdrawn: bool
    op: ClueOp  # the open, for the rule binding and its trigger

    @property
    def trigger(self) -> tuple[TriggerItem, ...]:
        return self.op.trigger


class EpisodeBook:
    """Applies ClueOps as `rules.store.apply_ops` does to the table (tests compare both)."""

    def __init__(self) -> None:
        self.episodes: dict[tuple[str, float], Episode] = {}

    def _other_open(self, fp: str, start: float) -> bool:
        return any(
            e.fingerprint == fp and e.ended_at is None and e.started_at != start
            for e in self.episodes.values()
        )

    def apply(self, ops: Iterable[ClueOp]) -> None:
        for op in ops:
            fp = op.bound.fingerprint
            ep = self.episodes.get((fp, op.started_at))
            if op.action in (ClueAction.OPEN, ClueAction.CLOSED):
                end = op.at if op.action == ClueAction.CLOSED else None
                if end is None and self._other_open(fp, op.started_at):
                    continue
                if ep is None:
                    self.episodes[(fp, op.started_at)] = Episode(fp, op.started_at, end, False, op)
                elif ep.withdrawn:
                    ep.withdrawn, ep.ended_at, ep.op = False, end, op
            elif ep is None or ep.withdrawn:
                continue
            elif op.action == ClueAction.RESOLVE:
                ep.ended_at = op.at
            elif op.action == ClueAction.REOPEN:
                if ep.ended_at is not None and not self._other_open(fp, op.started_at):
                    ep.ended_at = None
            elif op.action == ClueAction.WITHDRAW:
                ep.withdrawn = True
                if ep.ended_at is None:
                    ep.ended_at = max(op.at, op.started_at)

    def standing(self) -> list[Episode]:
        """Episodes not withdrawn, in start order."""
        return sorted(
            (e for e in self.episodes.values() if not e.withdrawn),
            key=lambda e: (e.started_at, e.fingerprint),
        )
