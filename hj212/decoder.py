"""One frame to what the writer stores: readings and dead letters, and the replies owed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from enum import StrEnum

from hj212.codes import CodeTables
from hj212.convert import to_readings
from hj212.packet import Packet, PacketError, decode_packet, reply_9014
from hj212.split import Reassembler
from ingest.codec import Limits
from ingest.models import DeadLetter, Reading, RejectReason


class Auth(StrEnum):
    """What the registration says about a packet's MN and PW."""

    OK = "ok"
    UNKNOWN = "unknown"
    WRONG_PASSWORD = "wrong_password"  # noqa: S105 - an outcome, not a password


@dataclass(frozen=True, slots=True)
class Outcome:
    """What to commit for one frame; `replies` are sent only after that commit.

    `store` is False when nothing is to be written yet (a split piece held back).
    """

    readings: tuple[Reading, ...] = ()
    letters: tuple[DeadLetter, ...] = ()
    replies: tuple[bytes, ...] = ()
    device_id: str | None = None
    packet: Packet | None = None
    store: bool = True


def _letter(
    topic: str, mn: str | None, reason: RejectReason, detail: str, raw: bytes
) -> DeadLetter:
    return DeadLetter(topic, mn, reason, detail, raw)


class Decoder:
    """Pure decoding with the code tables and limits; authentication is passed in."""

    def __init__(self, tables: CodeTables, zone: tzinfo, limits: Limits) -> None:
        self.tables = tables
        self.zone = zone
        self.limits = limits

    def frame(self, frame: bytes, topic: str) -> Packet | DeadLetter:
        """Frame, CRC and fields checked: a packet, or the dead letter saying why not."""
        try:
            return decode_packet(frame)
        except PacketError as err:
            return _letter(topic, err.mn, err.reason, err.detail, frame)

    def authenticated(self, p: Packet, auth: Auth, topic: str) -> DeadLetter | None:
        if auth is Auth.OK:
            return None
        if auth is Auth.UNKNOWN:
            detail = (
                f"MN {p.mn} is not registered (hj212.require_registration is on);"
                " register it with `offsite hj212 register`"
            )
            return _letter(topic, p.mn, RejectReason.UNKNOWN_DEVICE, detail, p.raw)
        return _letter(
            topic,
            p.mn,
            RejectReason.BAD_PASSWORD,
            f"PW does not match the password registered for MN {p.mn}",
            p.raw,
        )

    def packet(
        self,
        p: Packet,
        topic: str,
        now: datetime,
        reassembler: Reassembler,
        clock: Callable[[], float],
    ) -> Outcome:
        """An authenticated packet: split pieces held until whole, then converted."""
        # Pieces given up on are reported with whatever packet comes next.
        held = [self._incomplete(pieces, topic) for pieces in reassembler.expire(clock())]
        if p.is_split:
            whole, dropped = reassembler.add(p, clock())
            held += [self._incomplete(pieces, topic) for pieces in dropped]
            if whole is None:
                return Outcome(letters=tuple(held), device_id=p.mn, store=bool(held))
            p = whole
        kind = self.tables.stored.get(p.cn)
        if kind is None:
            name = self.tables.commands.get(p.cn, "unknown command")
            held.append(
                _letter(
                    topic,
                    p.mn,
                    RejectReason.UNSUPPORTED,
                    f"CN={p.cn} ({name}) is not stored; offsite stores CN 2011, 2051,"
                    " 2061 and 2031 data uploads",
                    p.raw,
                )
            )
            return Outcome(letters=tuple(held), device_id=p.mn, packet=p)
        conv = to_readings(p, kind, self.zone, self.tables, self.limits, now)
        letters = held + [_letter(topic, p.mn, r.reason, r.detail, p.raw) for r in conv.rejections]
        replies: tuple[bytes, ...] = ()
        if conv.readings or conv.rejections:
            # Stored (or refused for good, with its reason kept): resending cannot help.
            parts = p.parts or (p,)
            replies = tuple(reply_9014(x) for x in parts if x.wants_reply)
        return Outcome(conv.readings, tuple(letters), replies, p.mn, p)

    def _incomplete(self, pieces: list[Packet], topic: str) -> DeadLetter:
        first = pieces[0]
        got = ",".join(str(x.pno) for x in sorted(pieces, key=lambda x: x.pno or 0))
        return _letter(
            topic,
            first.mn,
            RejectReason.INCOMPLETE_SPLIT,
            f"split packet QN={first.qn} CN={first.cn}: only PNO {got} of PNUM={first.pnum}"
            " arrived in time; not stored and not answered, so the logger resends",
            b"".join(x.raw for x in pieces),
        )
