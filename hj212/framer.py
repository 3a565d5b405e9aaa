"""Cuts a TCP byte stream into HJ 212 frames (`##` … CRLF), keeping what is not a frame."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Garbage:
    """Bytes between frames that are not one (a truncated packet, line noise)."""

    data: bytes
    why: str


class Framer:
    """Feed it bytes; it returns whole frames and garbage, and keeps the unfinished tail."""

    def __init__(self, max_frame_bytes: int) -> None:
        self.max = max_frame_bytes
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes | Garbage]:
        buf = self._buf
        buf += data
        out: list[bytes | Garbage] = []
        while buf:
            start = buf.find(b"##")
            if start < 0:
                # Keep a lone trailing '#': it may be the first half of the next header.
                keep = 1 if buf.endswith(b"#") else 0
                junk = bytes(buf[: len(buf) - keep])
                del buf[: len(buf) - keep]
                if junk.strip():
                    out.append(Garbage(junk, "bytes outside a packet (no '##')"))
                break
            if start > 0:
                junk = bytes(buf[:start])
                del buf[:start]
                if junk.strip():
                    out.append(Garbage(junk, "bytes before '##' that are not a packet"))
            end = buf.find(b"\r\n", 2)
            again = buf.find(b"##", 2, end if end >= 0 else len(buf))
            if again >= 0:
                # A new header before this frame's CRLF: the first one was cut short.
                out.append(Garbage(bytes(buf[:again]), "a packet cut short by the next '##'"))
                del buf[:again]
                continue
            if end < 0:
                if len(buf) > self.max:
                    out.append(Garbage(bytes(buf[: self.max]), f"no CRLF within {self.max} bytes"))
                    # No '##' after the first (checked above): all of it is junk; the
                    # stream resynchronises on the next '##'.
                    buf.clear()
                    continue
                break
            out.append(bytes(buf[: end + 2]))
            del buf[: end + 2]
        return out

    @property
    def pending(self) -> int:
        return len(self._buf)
