"""The ingest service: MQTT intake, batch writer and storage upkeep, run together."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool

from ingest.intake import MqttIntake
from ingest.metrics import IngestMetrics
from ingest.models import FrameSink, PacketDecoder, ReadingSink, StatusSink
from ingest.settings import IngestSettings, MqttSettings, StorageSettings
from ingest.storage import StorageMaintainer
from ingest.writer import WriterLoop
from supervise.worker import Supervisor

log = logging.getLogger(__name__)


class IngestService:
    """Owns the writer thread, the paho client and the maintenance thread."""

    def __init__(
        self,
        mqtt_settings: MqttSettings,
        ingest_settings: IngestSettings,
        storage_settings: StorageSettings,
        broker_url: str,
        conninfo: str,
        pool: ConnectionPool,
        registry: CollectorRegistry,
        reading_sinks: Sequence[ReadingSink] = (),
        status_sinks: Sequence[StatusSink] = (),
        frame_sink: FrameSink | None = None,
        packet_decoder: PacketDecoder | None = None,
        supervisor: Supervisor | None = None,
        maintain: bool = True,
    ) -> None:
        # False in an ingest-only process: storage upkeep runs in the active engine instead.
        self.maintain = maintain
        self.metrics = IngestMetrics(registry)
        self.maintainer = StorageMaintainer(storage_settings, conninfo, self.metrics, supervisor)
        self.writer = WriterLoop(
            ingest_settings,
            conninfo,
            self.metrics,
            acker=self,
            reading_sinks=reading_sinks,
            status_sinks=status_sinks,
            supervisor=supervisor,
        )
        self.intake = MqttIntake(
            mqtt_settings,
            ingest_settings,
            storage_settings,
            broker_url,
            self.writer,
            self.metrics,
            frame_sink=frame_sink,
            packet_decoder=packet_decoder,
        )

    def ack(self, mid: int, qos: int) -> None:
        self.intake.ack(mid, qos)

    def start(self) -> None:
        if self.maintain:
            self.maintainer.run_once()
            self.maintainer.start()
        self.writer.start()
        self.intake.start()

    def stop(self) -> list[str]:
        """Stop; returns the threads that did not stop in time."""
        # Stop taking messages first, let the writer commit and ack what it holds, and only
        # then disconnect, so those acks still reach the broker.
        self.intake.stop_receiving()
        left = [] if self.writer.stop() else ["ingest-writer"]
        self.intake.disconnect()
        if not self.maintainer.stop():
            left.append("storage-maint")
        return left

    @property
    def broker_connected(self) -> bool:
        return self.intake.connected

    @property
    def database_up(self) -> bool:
        return self.writer.db_up
