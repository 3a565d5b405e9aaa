"""The HJ 212 service: the gateway's event loop in a thread, and the MQTT packet decoder."""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import timedelta
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool

from hj212.codes import tables
from hj212.decoder import Decoder
from hj212.gateway import Gateway
from hj212.loop import new_loop
from hj212.metrics import Hj212Metrics
from hj212.mqtt import MqttPackets
from hj212.registry import LoggerRegistry
from hj212.settings import Hj212Settings
from ingest.codec import Limits
from ingest.models import PacketDecoder
from ingest.settings import IngestSettings, StorageSettings
from ingest.writer import WriterLoop

log = logging.getLogger(__name__)


class Hj212Service:
    """Owns the gateway thread; `mqtt` decodes the packets ingest receives on .../hj212."""

    def __init__(
        self,
        settings: Hj212Settings,
        ingest_settings: IngestSettings,
        storage_settings: StorageSettings,
        pool: ConnectionPool,
        registry: CollectorRegistry,
    ) -> None:
        self.settings = settings
        self.metrics = Hj212Metrics(registry)
        limits = Limits(
            max_payload_bytes=ingest_settings.max_payload_bytes,
            max_future=timedelta(seconds=ingest_settings.max_future_s),
            retention=storage_settings.retention,
        )
        self.decoder = Decoder(tables(), ZoneInfo(settings.timezone), limits)
        self.registry = LoggerRegistry(pool, settings.require_registration)
        self.mqtt = MqttPackets(settings, self.decoder, self.registry, self.metrics)
        self.gateway: Gateway | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self, writer: WriterLoop) -> None:
        """Bind the port (raises if it cannot) and serve in a thread of its own."""
        self.gateway = Gateway(self.settings, self.decoder, self.registry, writer, self.metrics)
        started = threading.Event()
        failed: list[BaseException] = []
        loop = new_loop()
        self._loop = loop
        gateway = self.gateway

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(gateway.start())
            except BaseException as err:  # reported to start(), which raises it
                failed.append(err)
                started.set()
                return
            started.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="hj212-gateway", daemon=True)
        self._thread.start()
        started.wait(30)
        if failed:
            raise RuntimeError(
                f"the HJ 212 gateway could not listen on {self.settings.host}:"
                f"{self.settings.port}: {failed[0]}"
            ) from failed[0]
        log.info("HJ 212 gateway listening on %s:%d", self.settings.host, gateway.port)

    @property
    def serving(self) -> bool:
        """True while the gateway's event loop thread runs and its loop is up."""
        loop, thread = self._loop, self._thread
        return (
            thread is not None
            and thread.is_alive()
            and loop is not None
            and loop.is_running()
            and not loop.is_closed()
        )

    @property
    def port(self) -> int:
        return self.gateway.port if self.gateway is not None else 0

    def stop(self) -> None:
        """Stop accepting and reading; replies still owed are dropped (loggers resend)."""
        loop, gateway = self._loop, self.gateway
        if loop is None or gateway is None or loop.is_closed():
            return
        future = asyncio.run_coroutine_threadsafe(gateway.stop(), loop)
        try:
            future.result(10)
        except Exception:
            log.exception("error while stopping the HJ 212 gateway")
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)


def worker_packet_decoder(
    settings: Hj212Settings,
    ingest_settings: IngestSettings,
    storage_settings: StorageSettings,
    conninfo: str,
    registry: CollectorRegistry,
) -> PacketDecoder:
    """The hj212 channel's decoder in an ingest child process, which has no pool: one of two
    connections for the logger registry (passwords, self-registration), opened lazily so a
    database that is down at start is retried like the writer's. Picklable by reference,
    it crosses the spawn as the worker's factory (ingest/worker_process.py)."""
    pool = ConnectionPool(
        conninfo, min_size=0, max_size=2, open=False, name="hj212-worker", reconnect_timeout=86400
    )
    pool.open(wait=False)
    return Hj212Service(settings, ingest_settings, storage_settings, pool, registry).mqtt
