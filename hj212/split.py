"""Reassembles split packets (Flag D bit, PNUM/PNO) into one packet, with a deadline."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from hj212.packet import Packet


@dataclass(slots=True)
class _Pending:
    first_seen: float
    pieces: dict[int, Packet] = field(default_factory=dict)


class Reassembler:
    """Holds the pieces of split packets of one source (a connection or a device).

    Pieces of one packet share MN, QN and CN; their CP field lists are joined in PNO
    order. Bounded: at most `max_pending` packets wait, each for `timeout_s`.
    """

    def __init__(self, timeout_s: float, max_pending: int) -> None:
        self.timeout_s = timeout_s
        self.max_pending = max_pending
        self._pending: dict[tuple[str, str | None, str], _Pending] = {}

    def add(self, p: Packet, now: float) -> tuple[Packet | None, list[list[Packet]]]:
        """(the whole packet once its last piece arrived, the piece sets given up on)."""
        dropped = self.expire(now)
        key = (p.mn, p.qn, p.cn)
        pending = self._pending.get(key)
        if pending is None:
            if len(self._pending) >= self.max_pending:
                oldest = min(self._pending, key=lambda k: self._pending[k].first_seen)
                dropped.append(list(self._pending.pop(oldest).pieces.values()))
            pending = self._pending[key] = _Pending(now)
        assert p.pno is not None
        assert p.pnum is not None
        pending.pieces.setdefault(p.pno, p)  # a resent piece is the same piece
        if len(pending.pieces) < p.pnum:
            return None, dropped
        del self._pending[key]
        parts = tuple(pending.pieces[i] for i in sorted(pending.pieces))
        whole = replace(
            parts[0],
            raw=b"".join(x.raw for x in parts),
            cp=";".join(x.cp for x in parts if x.cp),
            pno=None,
            length_ok=all(x.length_ok for x in parts),
            parts=parts,
        )
        return whole, dropped

    def expire(self, now: float) -> list[list[Packet]]:
        if not self._pending:
            return []  # the usual case, checked on every packet
        old = [k for k, v in self._pending.items() if now - v.first_seen > self.timeout_s]
        return [list(self._pending.pop(k).pieces.values()) for k in old]

    @property
    def waiting(self) -> int:
        return len(self._pending)
