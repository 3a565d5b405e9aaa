"""The ingest service: MQTT intake, batch writer and storage upkeep, run together.

With `workers` > 0 the MQTT intake runs in that many child processes instead (see
ingest/workers.py); this process keeps a writer (for the HJ 212 gateway) and the upkeep.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool

from ingest.intake import MqttIntake
from ingest.metrics import IngestMetrics
from ingest.models import FrameSink, PacketDecoder, ReadingSink, StatusSink
from ingest.relay import EngineRelay, RelayConnection
from ingest.settings import IngestSettings, MqttSettings, StorageSettings
from ingest.storage import StorageMaintainer
from ingest.worker_process import PacketDecoderFactory
from ingest.workers import IngestWorkers, MergedIngestMetrics, worker_specs
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
        pool: ConnectionPool | None,
        registry: CollectorRegistry,
        reading_sinks: Sequence[ReadingSink] = (),
        status_sinks: Sequence[StatusSink] = (),
        frame_sink: FrameSink | None = None,
        packet_decoder: PacketDecoder | None = None,
        supervisor: Supervisor | None = None,
        workers: int = 0,
        frames_elsewhere: bool = False,
        maintain: bool = True,
        log_level: str = "INFO",
        relay: bool = False,
        child_packet_decoder: PacketDecoderFactory | None = None,
    ) -> None:
        supervisor = supervisor or Supervisor()
        # With child processes, this process's own counters join theirs under one name.
        own = CollectorRegistry() if workers else registry
        self.metrics = IngestMetrics(own)
        self.maintainer: StorageMaintainer | None = (
            StorageMaintainer(storage_settings, conninfo, self.metrics, supervisor)
            if maintain
            else None
        )
        # [failover] An engine in another process does not see HJ 212 packets on the
        # broker: their committed readings are published for it (ingest/relay.py), on the
        # intake's connection, or on one of the relay's own where there is no intake here.
        self.relay = EngineRelay(self.publish_relayed) if relay else None
        self.relay_connection = (
            RelayConnection(mqtt_settings, broker_url, self.relay.tracker.on_publish)
            if self.relay is not None and workers
            else None
        )
        self.writer = WriterLoop(
            ingest_settings,
            conninfo,
            self.metrics,
            acker=self,
            reading_sinks=reading_sinks,
            status_sinks=status_sinks,
            supervisor=supervisor,
            relay=self.relay,
        )
        self.intake: MqttIntake | None = None
        self.workers: IngestWorkers | None = None
        if workers:
            specs = worker_specs(
                workers,
                mqtt_settings,
                ingest_settings,
                storage_settings,
                broker_url,
                conninfo,
                frames_elsewhere=frames_elsewhere,
                log_level=log_level,
                # Children that decode HJ 212 packets relay their readings too.
                relay=relay and child_packet_decoder is not None,
                packet_decoder=child_packet_decoder,
            )
            self.workers = IngestWorkers(specs, registry, supervisor)
            registry.register(MergedIngestMetrics(own, self.workers))
        else:
            self.intake = MqttIntake(
                mqtt_settings,
                ingest_settings,
                storage_settings,
                broker_url,
                self.writer,
                self.metrics,
                frame_sink=frame_sink,
                packet_decoder=packet_decoder,
                frames_elsewhere=frames_elsewhere,
            )
            if self.relay is not None:
                self.intake.on_publish(self.relay.tracker.on_publish)

    def ack_committed(self, mids: Sequence[int]) -> None:
        if self.intake is None:
            # Only MQTT messages carry a QoS above 0, and they arrive in the children.
            log.error("no MQTT intake in this process to acknowledge %d messages", len(mids))
            return
        self.intake.ack_many(mids)

    def publish_relayed(self, topic: str, payload: bytes) -> int:
        if self.intake is not None:
            return self.intake.publish(topic, payload)
        assert self.relay_connection is not None  # built whenever there is no intake here
        return self.relay_connection.publish(topic, payload)

    def start(self) -> None:
        if self.maintainer is not None:
            self.maintainer.run_once()
            self.maintainer.start()
        if self.relay_connection is not None:
            self.relay_connection.start()
        self.writer.start()
        if self.intake is not None:
            self.intake.start()
        if self.workers is not None:
            self.workers.start()

    def stop(self) -> list[str]:
        """Stop; returns the threads (or child processes) that did not stop in time."""
        left: list[str] = []
        if self.workers is not None:
            left += self.workers.stop()
        # Stop taking messages first, let the writer commit and ack what it holds, and only
        # then disconnect, so those acks still reach the broker.
        if self.intake is not None:
            self.intake.stop_receiving()
        if not self.writer.stop():
            left.append("ingest-writer")
        if self.intake is not None:
            self.intake.disconnect()
        if self.relay_connection is not None:
            self.relay_connection.stop()
        if self.maintainer is not None and not self.maintainer.stop():
            left.append("storage-maint")
        return left

    @property
    def broker_connected(self) -> bool:
        if self.workers is not None:
            return self.workers.broker_connected
        return self.intake is not None and self.intake.connected

    @property
    def database_up(self) -> bool:
        if self.workers is not None and not self.workers.database_up:
            return False
        return self.writer.db_up

    def worker_checks(self) -> dict[str, bool]:
        """Readiness of each ingest child process (none on the single-process path)."""
        return self.workers.checks() if self.workers is not None else {}
