"""Ingest child processes: started, watched, restarted when they die, their metrics merged.

One Python process tops out at paho's receive path (one interpreter lock), so a host runs
N ingest processes, each its own MQTT client (`<client_id>-<n>`) in one `$share` group.
A child that dies (a crash, the OOM killer, SIGKILL) is started again under the same client
id: the broker kept its session and redelivers what the child had not acknowledged, and
since PUBACK follows the commit, nothing acknowledged is lost.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from ingest import worker_process
from ingest.metrics import WorkerMetrics
from ingest.settings import IngestSettings, MqttSettings, StorageSettings
from ingest.worker_process import PacketDecoderFactory, WorkerReport, WorkerSpec
from supervise.worker import Supervised, Supervisor

log = logging.getLogger(__name__)

# A child that keeps dying is started again at most this often, so a broken setting (a
# refused login) does not spin the host.
RESTART_MIN_INTERVAL_S = 1.0
# A child that has not reported for this long is not ready (stuck, or starting).
REPORT_STALE_S = 5.0


def worker_broker_url(url: str, index: int, per_worker_user: bool) -> str:
    """The broker URL worker `index` logs in with: `<user>-<index>` when each worker has a
    login of its own (brokers that take the client id from the login)."""
    parts = urlsplit(url)
    if not per_worker_user or not parts.username:
        return url
    user = quote(f"{unquote(parts.username)}-{index}", safe="")
    auth = user + (f":{parts.password}" if parts.password is not None else "")
    host = parts.hostname or ""
    netloc = f"{auth}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def worker_specs(
    count: int,
    mqtt: MqttSettings,
    ingest: IngestSettings,
    storage: StorageSettings,
    broker_url: str,
    conninfo: str,
    frames_elsewhere: bool,
    log_level: str,
    relay: bool = False,
    packet_decoder: PacketDecoderFactory | None = None,
) -> list[WorkerSpec]:
    """One spec per child: distinct client ids, one shared group (the client id by default)."""
    group = mqtt.shared_group or mqtt.client_id
    return [
        WorkerSpec(
            index=n,
            mqtt=mqtt.model_copy(
                update={"client_id": f"{mqtt.client_id}-{n}", "shared_group": group}
            ),
            ingest=ingest,
            storage=storage,
            broker_url=worker_broker_url(broker_url, n, mqtt.worker_users),
            conninfo=conninfo,
            frames_elsewhere=frames_elsewhere,
            log_level=log_level,
            relay=relay,
            packet_decoder=packet_decoder,
        )
        for n in range(1, count + 1)
    ]


@dataclass(slots=True)
class _Child:
    spec: WorkerSpec
    process: BaseProcess | None = None
    conn: Connection | None = None
    started_at: float = 0.0
    last: WorkerReport | None = None
    last_at: float = 0.0

    @property
    def name(self) -> str:
        return f"ingest-worker-{self.spec.index}"

    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()


class IngestWorkers:
    """Starts the children, restarts dead ones, stops them in order (drain, then exit)."""

    def __init__(
        self,
        specs: Sequence[WorkerSpec],
        registry: CollectorRegistry,
        supervisor: Supervisor,
    ) -> None:
        self._children = [_Child(spec) for spec in specs]
        self._ctx = mp.get_context("spawn")  # a fork would copy the parent's threads' locks
        self._supervisor = supervisor
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._watcher: Supervised | None = None
        self.metrics = WorkerMetrics(registry)
        self.metrics.configured.set(len(specs))
        self.metrics.alive.set_function(lambda: sum(c.alive() for c in self._children))

    def start(self) -> None:
        with self._lock:
            for child in self._children:
                self._spawn(child)
        self._watcher = self._supervisor.start("ingest-workers", self._step)

    def _spawn(self, child: _Child) -> None:
        parent_end, child_end = self._ctx.Pipe()
        process = self._ctx.Process(
            target=worker_process.run,
            args=(child.spec, child_end),
            name=child.name,
            daemon=False,  # a daemonic process may not stop gracefully; we stop it ourselves
        )
        process.start()
        child_end.close()
        child.process, child.conn = process, parent_end
        child.started_at = time.monotonic()
        child.last, child.last_at = None, 0.0
        log.info("started %s (pid %s, client id %s)", child.name, process.pid,
                 child.spec.mqtt.client_id)  # fmt: skip

    def _drain(self, child: _Child) -> None:
        conn = child.conn
        if conn is None:
            return
        try:
            while conn.poll():
                report = conn.recv()
                if isinstance(report, WorkerReport):
                    child.last, child.last_at = report, time.monotonic()
        except (EOFError, OSError):
            pass  # the child is gone; its exit is seen below

    def _step(self) -> bool:
        """One turn of the watcher thread: read reports, restart the dead."""
        with self._lock:
            for child in self._children:
                self._drain(child)
                if self._stop.is_set() or child.alive():
                    continue
                if time.monotonic() - child.started_at < RESTART_MIN_INTERVAL_S:
                    continue
                code = child.process.exitcode if child.process is not None else None
                log.error("%s died (exit code %s); starting it again", child.name, code)
                self.metrics.restarts.inc()
                if child.conn is not None:
                    child.conn.close()
                self._spawn(child)
        return not self._stop.wait(0.2)

    def stop(self, timeout: float = 30.0) -> list[str]:
        """Ask every child to drain and stop; returns those that had to be killed."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(5)
            self._supervisor.forget(self._watcher)
        left: list[str] = []
        with self._lock:
            for child in self._children:
                if child.alive() and child.conn is not None:
                    with contextlib.suppress(OSError):  # already gone: joined below
                        child.conn.send(worker_process.STOP)
            deadline = time.monotonic() + timeout
            for child in self._children:
                if child.process is None:
                    continue
                child.process.join(max(0.1, deadline - time.monotonic()))
                if child.process.is_alive():
                    child.process.kill()
                    child.process.join(5)
                    left.append(child.name)
                self._drain(child)
                if child.conn is not None:
                    child.conn.close()
        return left

    # -- what the parent shows -------------------------------------------------------------

    def _fresh(self, child: _Child) -> WorkerReport | None:
        if not child.alive() or child.last is None:
            return None
        if time.monotonic() - child.last_at > REPORT_STALE_S:
            return None
        return child.last

    @property
    def broker_connected(self) -> bool:
        return all((r := self._fresh(c)) is not None and r.broker_connected for c in self._children)

    @property
    def database_up(self) -> bool:
        return all((r := self._fresh(c)) is None or r.database_up for c in self._children)

    def checks(self) -> dict[str, bool]:
        """One readiness check per child: running, reporting, connected, writing."""
        out: dict[str, bool] = {}
        for child in self._children:
            r = self._fresh(child)
            out[child.name] = r is not None and r.broker_connected and r.database_up
        return out

    def reports(self) -> Iterator[tuple[str, bytes]]:
        for child in self._children:
            if child.last is not None:
                yield str(child.spec.index), child.last.metrics

    def pids(self) -> list[int | None]:
        return [c.process.pid if c.process is not None else None for c in self._children]


_CHILDREN_ONLY = frozenset({"offsite_mqtt_connected"})


class MergedIngestMetrics(Collector):
    """The ingest metrics of this process and of its children as one family per name, each
    sample labelled with `worker` ("0" is this process: its writer serves HJ 212)."""

    def __init__(self, own: CollectorRegistry, workers: IngestWorkers) -> None:
        self._own = own
        self._workers = workers

    def _sources(self) -> Iterable[tuple[str, Iterable[Metric]]]:
        # This process holds no broker session: its 0 would read as "disconnected".
        yield "0", (f for f in self._own.collect() if f.name not in _CHILDREN_ONLY)
        for index, text in self._workers.reports():
            yield index, text_string_to_metric_families(text.decode())

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for index, families in self._sources():
            for family in families:
                out = merged.get(family.name)
                if out is None:
                    out = merged[family.name] = Metric(
                        family.name, family.documentation, family.type, family.unit
                    )
                for s in family.samples:
                    out.samples.append(s._replace(labels={**s.labels, "worker": index}))
        yield from merged.values()
