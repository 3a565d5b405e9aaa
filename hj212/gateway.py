"""The asyncio TCP server loggers keep connections to; replies leave after the commit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

from hj212.decoder import Decoder
from hj212.framer import Framer, Garbage
from hj212.metrics import Hj212Metrics
from hj212.packet import Packet
from hj212.registry import LoggerRegistry
from hj212.settings import Hj212Settings
from hj212.split import Reassembler
from ingest.models import DeadLetter, RejectReason
from ingest.writer import Envelope, WriterLoop

log = logging.getLogger(__name__)

TOPIC = "hj212/tcp"


class _Connection:
    """One logger's connection: its framer, its split pieces, and where replies go."""

    __slots__ = ("framer", "last_read", "peer", "reassembler", "writer")

    def __init__(self, settings: Hj212Settings, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.last_read = time.monotonic()
        self.framer = Framer(settings.max_frame_bytes)
        self.reassembler = Reassembler(settings.split_timeout_s, settings.max_pending_splits)
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)


class Gateway:
    """Accepts loggers, frames and decodes their packets, hands them to ingest's writer.

    A reply (CN 9014) is written only from the writer's commit callback, so a packet
    the database did not take is never answered and the logger sends it again. When the
    writer's queue is full a connection simply stops reading (TCP back-pressure).
    """

    def __init__(
        self,
        settings: Hj212Settings,
        decoder: Decoder,
        registry: LoggerRegistry,
        writer: WriterLoop,
        metrics: Hj212Metrics,
    ) -> None:
        self.settings = settings
        self.decoder = decoder
        self.registry = registry
        self.writer = writer
        self.metrics = metrics
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._conns: set[_Connection] = set()
        self._stopping = threading.Event()
        self._sweeper: asyncio.Task[None] | None = None
        # Replies the writer thread released, sent by the loop in one wake-up per batch
        # rather than one cross-thread call per packet.
        self._outbox: deque[tuple[_Connection, bytes, float]] = deque()
        self._flush_lock = threading.Lock()
        self._flush_scheduled = False

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(
            self._serve, self.settings.host, self.settings.port, backlog=4096, limit=1 << 16
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._sweeper = asyncio.create_task(self._sweep_idle())

    async def _sweep_idle(self) -> None:
        # One sweep for all connections: a timeout per read would cost a task per packet.
        limit = self.settings.idle_timeout_s
        while True:
            await asyncio.sleep(min(limit / 4, 30.0))
            cutoff = time.monotonic() - limit
            for c in [c for c in self._conns if c.last_read < cutoff]:
                log.info("closing HJ 212 connection %s: silent for %.0fs", c.peer, limit)
                c.writer.close()

    async def stop(self) -> None:
        self._stopping.set()
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
        for c in list(self._conns):
            c.writer.close()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    # -- one connection ---------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._conns) >= self.settings.max_connections:
            self.metrics.refused.inc()
            writer.close()
            return
        conn = _Connection(self.settings, writer)
        self._conns.add(conn)
        self.metrics.accepted.inc()
        self.metrics.connections.inc()
        try:
            while not self._stopping.is_set():
                data = await reader.read(1 << 16)
                if not data:
                    break
                conn.last_read = time.monotonic()
                for item in conn.framer.feed(data):
                    if isinstance(item, Garbage):
                        await self._dead(
                            DeadLetter(TOPIC, None, RejectReason.BAD_FRAME, item.why, item.data),
                            "broken",
                        )
                    else:
                        await self._frame(item, conn)
        except (ConnectionError, OSError) as err:
            log.info("HJ 212 connection %s ended: %s", conn.peer, err)
        finally:
            self._conns.discard(conn)
            self.metrics.connections.dec()
            writer.close()

    async def _frame(self, frame: bytes, conn: _Connection) -> None:
        arrived = time.perf_counter()
        got = self.decoder.frame(frame, TOPIC)
        if not isinstance(got, Packet):
            await self._dead(got, "rejected")
            return
        p = got
        if not p.length_ok:
            self.metrics.length_mismatch.inc()
        auth = self.registry.cached(p.mn, p.pw)
        if auth is None:
            auth = await asyncio.to_thread(self.registry.check, p.mn, p.pw)
        letter = self.decoder.authenticated(p, auth, TOPIC)
        if letter is not None:
            await self._dead(letter, "refused", p.version)
            return
        now = datetime.now(UTC)
        out = self.decoder.packet(p, TOPIC, now, conn.reassembler, time.monotonic)
        if not out.store:
            self.metrics.packet("held", p.version)
            return
        self.metrics.packet("stored" if out.readings else "rejected", p.version)
        on_commit = self._replier(conn, b"".join(out.replies), arrived) if out.replies else None
        await self._put(
            Envelope(
                mid=0,
                qos=0,
                topic=TOPIC,
                device_id=out.device_id,
                payload=p.raw,
                received_at=now,
                readings=out.readings,
                dead_letters=out.letters,
                on_commit=on_commit,
                relay=True,  # never on the broker: an engine elsewhere gets it relayed
            )
        )

    def _replier(self, conn: _Connection, replies: bytes, arrived: float) -> Callable[[], None]:
        def committed() -> None:  # on the writer thread, after the commit
            self._outbox.append((conn, replies, arrived))
            with self._flush_lock:
                if self._flush_scheduled:
                    return
                self._flush_scheduled = True
            loop = self._loop
            assert loop is not None
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                loop.call_soon_threadsafe(self._flush)

        return committed

    def _flush(self) -> None:
        with self._flush_lock:
            self._flush_scheduled = False
        outbox = self._outbox
        now = time.perf_counter()
        sent = 0
        while outbox:
            conn, replies, arrived = outbox.popleft()
            if conn.writer.is_closing():
                continue  # the logger went away; it resends on its next connection
            conn.writer.write(replies)
            sent += replies.count(b"\r\n")
            self.metrics.reply_seconds.observe(now - arrived)
        if sent:
            self.metrics.replies.inc(sent)

    async def _dead(self, letter: DeadLetter, result: str, version: str = "unknown") -> None:
        self.metrics.packet(result, version)
        await self._put(
            Envelope(
                mid=0,
                qos=0,
                topic=TOPIC,
                device_id=letter.device_id,
                payload=letter.payload,
                received_at=datetime.now(UTC),
                dead_letters=(letter,),
            )
        )

    async def _put(self, env: Envelope) -> None:
        # The writer's queue is bounded; while it is full this connection stops reading,
        # which is TCP back-pressure on that logger alone. Nothing is answered meanwhile.
        q = self.writer.queue
        delay = 0.005
        while not self._stopping.is_set():
            try:
                q.put_nowait(env)
                return
            except queue.Full:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.2)

    @property
    def connections(self) -> int:
        return len(self._conns)
