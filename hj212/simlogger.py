"""A data-logger simulator (a client of the HJ 212 contract) for tests and benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from hj212.packet import decode_packet, encode

_ZONE = ZoneInfo("Asia/Shanghai")
_SUFFIX = {"2011": ("Rtd",), "2051": ("Avg",), "2061": ("Avg",), "2031": ("Avg",)}
_qn = itertools.count(1)


def data_time(t: datetime) -> str:
    return t.astimezone(_ZONE).strftime("%Y%m%d%H%M%S")


def data_packet(
    mn: str,
    cn: str,
    at: datetime,
    values: Mapping[str, float | tuple[float, str]],
    pw: str = "123456",
    flag: int = 5,
    st: str = "32",
    qn: str | None = None,
) -> tuple[str, bytes]:
    """(QN, frame) of a data upload: `values` maps a code to a value or (value, flag)."""
    qn = qn or f"{data_time(at)}{next(_qn) % 1000:03d}"
    groups = []
    for code, v in values.items():
        value, mark = v if isinstance(v, tuple) else (v, "N")
        items = [f"{code}-{s}={value}" for s in _SUFFIX[cn]]
        groups.append(",".join([*items, f"{code}-Flag={mark}"]))
    cp = ";".join([f"DataTime={data_time(at)}", *groups])
    return qn, encode(f"QN={qn};ST={st};CN={cn};PW={pw};MN={mn};Flag={flag};CP=&&{cp}&&")


def _checked_qn(line: bytes) -> str | None:
    p = decode_packet(line)
    return p.qn if p.cn == "9014" else None


def _reply_qn(line: bytes) -> str | None:
    if b"CN=9014;" not in line:
        return None
    start = line.find(b"QN=") + 3
    return line[start : line.find(b";", start)].decode()


class Logger:
    """One logger connection: sends packets and matches the 9014 replies by QN."""

    def __init__(self, host: str, port: int, trusting: bool = False) -> None:
        self.host = host
        self.port = port
        # A benchmark's loggers skip checking the reply's CRC (they would cost as much CPU
        # as the server they measure); tests check every reply.
        self.trusting = trusting
        self.replies: dict[str, float] = {}  # QN -> when the reply arrived (perf_counter)
        self.sent_at: dict[str, float] = {}
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._waiters: dict[str, asyncio.Future[None]] = {}

    async def connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._reader is not None
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                line = await self._reader.readuntil(b"\r\n")
                qn = _reply_qn(line) if self.trusting else _checked_qn(line)
                if qn is not None:
                    self.replies.setdefault(qn, time.perf_counter())
                    w = self._waiters.pop(qn, None)
                    if w is not None and not w.done():
                        w.set_result(None)

    async def send(self, qn: str, frame: bytes) -> None:
        assert self._writer is not None
        self.sent_at.setdefault(qn, time.perf_counter())
        self._writer.write(frame)
        await self._writer.drain()

    async def send_and_wait(self, qn: str, frame: bytes, timeout: float) -> bool:
        """Send, then wait for the reply; False when none came in time (resend it)."""
        if qn in self.replies:
            return True
        loop = asyncio.get_running_loop()
        w = self._waiters.get(qn)
        if w is None or w.done():
            w = self._waiters[qn] = loop.create_future()
        await self.send(qn, frame)
        # A timer rather than wait_for(shield(...)): a benchmark's thousand loggers would
        # spend more CPU on those tasks and futures than on their packets.
        timer = loop.call_later(timeout, self._give_up, qn, w)
        try:
            await w
        finally:
            timer.cancel()
        return qn in self.replies

    def _give_up(self, qn: str, w: asyncio.Future[None]) -> None:
        if self._waiters.get(qn) is w:
            del self._waiters[qn]  # a reply that comes later is still noted in `replies`
        if not w.done():
            w.set_result(None)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
