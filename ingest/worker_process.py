"""One ingest child process: its own MQTT client in the shared group, its own writer.

Stateless: it keeps nothing between messages that the database does not hold, so a dead
one is simply started again under the same client id and the broker redelivers what it had
not acknowledged. It reports to its parent over a pipe: metrics text, broker and database
state, once a second. Committed readings go nowhere but the database (the engine reads the
stream on its own when ingest runs in child processes).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest

from core.runtime import settle_after_start
from ingest.models import PacketDecoder
from ingest.settings import IngestSettings, MqttSettings, StorageSettings

if TYPE_CHECKING:
    from ingest.service import IngestService

log = logging.getLogger(__name__)

REPORT_EVERY_S = 1.0
STOP = "stop"


PacketDecoderFactory = Callable[
    [IngestSettings, StorageSettings, str, CollectorRegistry], PacketDecoder
]


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """Everything a child needs, picklable (it is started with `spawn`)."""

    index: int
    mqtt: MqttSettings  # client_id and shared_group already set for this worker
    ingest: IngestSettings
    storage: StorageSettings
    broker_url: str
    conninfo: str
    frames_elsewhere: bool
    log_level: str
    relay: bool = False  # publish committed HJ 212 readings for an engine elsewhere
    # Builds the hj212 channel's decoder in the child (given by the composition root, as a
    # module-level function or a partial of one, so it pickles by reference); None: refused.
    packet_decoder: PacketDecoderFactory | None = None


@dataclass(frozen=True, slots=True)
class WorkerReport:
    """What a child tells its parent once a second."""

    pid: int
    metrics: bytes
    broker_connected: bool
    database_up: bool
    final: bool = False


def worker_service(spec: WorkerSpec, registry: CollectorRegistry) -> IngestService:
    """The ingest service a worker runs (not started): its intake, writer and decoder."""
    # Imported here so the parent's import of this module stays light.
    from ingest.service import IngestService

    decoder = (
        spec.packet_decoder(spec.ingest, spec.storage, spec.conninfo, registry)
        if spec.packet_decoder is not None
        else None
    )
    return IngestService(
        spec.mqtt,
        spec.ingest,
        spec.storage,
        spec.broker_url,
        spec.conninfo,
        None,
        registry,
        frames_elsewhere=spec.frames_elsewhere,
        maintain=False,
        relay=spec.relay,
        packet_decoder=decoder,
    )


def run(spec: WorkerSpec, conn: Connection) -> None:
    """The child's main: serve until the parent says stop, closes the pipe, or SIGTERM."""
    logging.basicConfig(
        level=spec.log_level.upper(),
        format=f"%(asctime)s %(levelname)s ingest-{spec.index} %(name)s: %(message)s",
        stream=sys.stderr,
    )
    stop = threading.Event()
    # Ctrl-C reaches the whole process group: the parent decides when its children stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    registry = CollectorRegistry()
    service = worker_service(spec, registry)
    service.start()
    settle_after_start()

    def report(final: bool = False) -> None:
        conn.send(
            WorkerReport(
                os.getpid(),
                generate_latest(registry),
                service.broker_connected,
                service.database_up,
                final,
            )
        )

    try:
        while not stop.is_set():
            report()
            if conn.poll(REPORT_EVERY_S) and conn.recv() == STOP:
                break
    except (EOFError, OSError):
        log.warning("the parent process is gone; stopping")
    finally:
        left = service.stop()
        if left:
            log.error("did not stop in time: %s", ", ".join(left))
        with contextlib.suppress(OSError, ValueError):  # the parent is gone: no one to tell
            report(final=True)
