"""HJ 212 packets: the frame (`##`, length, data segment, CRC, CRLF) and its fields."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hj212.crc import crc16
from ingest.models import RejectReason
from ingest.topics import DEVICE_ID

_HEX = re.compile(rb"[0-9A-Fa-f]{4}")
_DIGITS = re.compile(rb"\d{4}")
_VERSIONS = {0: "2005", 1: "2017", 2: "2025"}


class PacketError(ValueError):
    """A packet offsite cannot take; `reason` and the message say why, `mn` if it was read."""

    def __init__(self, reason: RejectReason, detail: str, mn: str | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.mn = mn


@dataclass(frozen=True, slots=True)
class Packet:
    """One decoded packet; `cp` is the text between `CP=&&` and the closing `&&`."""

    raw: bytes
    cn: str
    mn: str
    cp: str
    qn: str | None = None
    st: str | None = None
    pw: str | None = None
    flag: int | None = None
    pnum: int | None = None
    pno: int | None = None
    length_ok: bool = True
    # The pieces a split packet was reassembled from (each gets its own reply).
    parts: tuple[Packet, ...] = field(default=())

    @property
    def version(self) -> str:
        """From the Flag's version bits: 2017 is 1 (Flag 4-7), 2025 is 2 (Flag 8-11)."""
        if self.flag is None:
            return "2005"
        return _VERSIONS.get(self.flag >> 2, "unknown")

    @property
    def wants_reply(self) -> bool:
        return self.flag is not None and bool(self.flag & 1)

    @property
    def is_split(self) -> bool:
        return self.flag is not None and bool(self.flag & 2) and self.pnum is not None


def unframe(frame: bytes) -> tuple[bytes, bool]:
    """The data segment of one frame and whether its length field was right.

    The CRC decides: a wrong length with a right CRC is accepted (field devices get the
    length wrong); a frame without the closing CRLF is accepted where a frame is a whole
    message (MQTT), the TCP framer has already cut at it.
    """
    body = frame[:-2] if frame.endswith(b"\r\n") else frame
    if not body.startswith(b"##"):
        raise PacketError(RejectReason.BAD_FRAME, "a packet starts with '##'")
    if len(body) < 10 or not _DIGITS.fullmatch(body[2:6]):
        raise PacketError(
            RejectReason.BAD_FRAME, "'##' must be followed by a 4-digit data segment length"
        )
    crc_text = body[-4:]
    if not _HEX.fullmatch(crc_text):
        raise PacketError(
            RejectReason.BAD_FRAME,
            f"a packet ends with 4 hex digits of CRC before CRLF, got {crc_text!r}",
        )
    segment = body[6:-4]
    got = int(crc_text, 16)
    want = crc16(segment)
    if got != want:
        raise PacketError(
            RejectReason.BAD_CRC,
            f"CRC {crc_text.decode()} does not match the data segment (computed {want:04X};"
            " HJ 212 Annex A algorithm, not CRC-16/MODBUS)",
            _peek_mn(segment),
        )
    return segment, int(body[2:6]) == len(segment)


def _peek_mn(segment: bytes) -> str | None:
    m = re.search(rb"(?:^|;)MN=([A-Za-z0-9_.-]{1,64});", segment)
    return m.group(1).decode() if m else None


def _int(name: str, text: str, mn: str | None) -> int:
    if not text.isdigit():
        raise PacketError(RejectReason.BAD_FRAME, f"{name}={text[:20]!r} must be digits", mn)
    return int(text)


def _head_fields(head: str, segment: bytes) -> dict[str, str]:
    """`QN=…;ST=…;…` as a mapping, the first of a repeated key winning."""
    pairs = [part.split("=", 1) for part in head.split(";") if part]
    try:
        return _first_wins(pairs)
    except ValueError:
        bad = next(part for part in pairs if len(part) != 2)
        raise PacketError(
            RejectReason.BAD_FRAME, f"field {bad[0][:30]!r} has no '='", _peek_mn(segment)
        ) from None


def _first_wins(pairs: list[list[str]]) -> dict[str, str]:
    """dict(pairs) in one C-level pass, but the first value of a repeated key kept (as
    sent order); raises ValueError for an item that is not key and value."""
    out = dict(pairs)
    if len(out) < len(pairs):  # a key repeats: rare, so only then the slower loop
        out = {}
        for key, value in pairs:
            out.setdefault(key, value)
    return out


def parse_segment(segment: bytes, raw: bytes, length_ok: bool = True) -> Packet:
    """The fields of a data segment: `QN=…;ST=…;CN=…;PW=…;MN=…;Flag=…;CP=&&…&&`."""
    text = segment.decode("latin-1")
    head, sep, rest = text.partition("CP=&&")
    if not sep or not rest.endswith("&&"):
        raise PacketError(
            RejectReason.BAD_FRAME,
            "the data segment must end with CP=&&…&&",
            _peek_mn(segment),
        )
    fields = _head_fields(head, segment)
    mn = fields.get("MN")
    if not mn:
        raise PacketError(RejectReason.BAD_FRAME, "the packet has no MN")
    if not DEVICE_ID.fullmatch(mn):
        raise PacketError(
            RejectReason.BAD_DEVICE_ID, f"MN {mn[:80]!r} must match [A-Za-z0-9_.-]{{1,64}}"
        )
    cn = fields.get("CN")
    if not cn:
        raise PacketError(RejectReason.BAD_FRAME, "the packet has no CN", mn)
    flag = _int("Flag", fields["Flag"], mn) if "Flag" in fields else None
    pnum = _int("PNUM", fields["PNUM"], mn) if "PNUM" in fields else None
    pno = _int("PNO", fields["PNO"], mn) if "PNO" in fields else None
    if flag is not None and flag & 2 and (pnum is None or pno is None):
        raise PacketError(RejectReason.BAD_FRAME, "Flag marks a split packet without PNUM/PNO", mn)
    if pnum is not None and pno is not None and not 1 <= pno <= pnum:
        raise PacketError(RejectReason.BAD_FRAME, f"PNO={pno} is outside 1..PNUM={pnum}", mn)
    return Packet(
        raw=raw,
        cn=cn,
        mn=mn,
        cp=rest[:-2],
        qn=fields.get("QN"),
        st=fields.get("ST"),
        pw=fields.get("PW"),
        flag=flag,
        pnum=pnum,
        pno=pno,
        length_ok=length_ok,
    )


def decode_packet(frame: bytes) -> Packet:
    """Check the frame and CRC, then read the fields; raises PacketError."""
    segment, length_ok = unframe(frame)
    return parse_segment(segment, frame, length_ok)


def cp_fields(cp: str) -> dict[str, str]:
    """`DataTime=…;w01018-Rtd=1,w01018-Flag=N;…` as a flat mapping (first value wins)."""
    # Groups (`;`) and items (`,`) are read alike.
    pairs = [item.split("=", 1) for item in cp.replace(",", ";").split(";")]
    try:
        out = _first_wins(pairs)
    except ValueError:  # an item without '=' (or an empty one) is skipped
        out = _first_wins([x for x in pairs if len(x) == 2])
    out.pop("", None)  # `=value` names nothing
    return out


def encode(segment: str) -> bytes:
    """A frame around `segment`: length, CRC in upper-case hex, CRLF."""
    data = segment.encode("latin-1")
    return b"##%04d%s%04X\r\n" % (len(data), data, crc16(data))


def reply_9014(p: Packet) -> bytes:
    """The data reply (CN 9014) echoing the packet's QN, in the packet's protocol version."""
    version = (p.flag or 0) >> 2
    return encode(
        f"QN={p.qn or ''};ST=91;CN=9014;PW={p.pw or ''};MN={p.mn};Flag={version << 2};CP=&&&&"
    )
