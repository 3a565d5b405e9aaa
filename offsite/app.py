"""The composition root: builds every service from Settings and runs them together."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import uvicorn
from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool

from alerts.service import AlertService
from api.app import create_app
from api.context import ApiContext
from ingest.models import FrameSink, ReadingSink, StatusSink
from ingest.service import IngestService
from offsite.db import DbCapabilities, create_pool
from offsite.embedded import EmbeddedBroker, EmbeddedPostgres
from offsite.migrations import prepare_database
from offsite.settings import Settings
from rules.models import ClueSink
from rules.service import RuleService
from subjects.directory import SubjectDirectory
from subjects.service import SubjectsService
from video.evidence import DirectoryOwnership
from video.service import VideoService

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Endpoints:
    """Where everything listens, printed at start."""

    database: str = ""
    broker: str = ""
    http: str = ""
    embedded: list[str] = field(default_factory=list)


def _redact(url: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(url)
    if info.get("password"):
        info["password"] = "***"  # noqa: S105 - a mask, not a password
    return psycopg.conninfo.make_conninfo("", **info)


def _redact_broker(url: str) -> str:
    """The broker URL without its password, for the banner and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class OffsiteApp:
    """One process: embedded servers if asked, migrations, ingest, rules, alerts, video, HTTP."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = CollectorRegistry()
        self.endpoints = Endpoints()
        self._embedded_pg: EmbeddedPostgres | None = None
        self._embedded_broker: EmbeddedBroker | None = None
        self._stoppers: list[Callable[[], None]] = []
        self._reloaders: list[Callable[[], None]] = []
        self.pool: ConnectionPool | None = None
        self.ingest: IngestService | None = None
        self.capabilities: DbCapabilities | None = None
        self._http: uvicorn.Server | None = None
        self._http_thread: threading.Thread | None = None
        self.api_context: ApiContext | None = None

    # -- infrastructure -------------------------------------------------------------------

    def _database_url(self) -> str:
        if self.settings.database.url:
            return self.settings.database.url
        pg = EmbeddedPostgres(self.settings.state_dir / "postgres")
        pg.start()
        self._embedded_pg = pg
        self.endpoints.embedded.append(f"PostgreSQL (data in {pg.data_dir})")
        return pg.url

    def _broker_url(self) -> str:
        if self.settings.mqtt.url:
            return self.settings.mqtt.url
        broker = EmbeddedBroker(
            self.settings.state_dir / "broker", kind=self.settings.mqtt.embedded
        )
        broker.start()
        self._embedded_broker = broker
        if broker.kind == "amqtt":
            # The pure-Python broker speaks MQTT 3.1.1 only.
            mqtt = self.settings.mqtt.model_copy(update={"protocol": "3.1.1"})
            self.settings = self.settings.model_copy(update={"mqtt": mqtt})
        self.endpoints.embedded.append(f"{broker.kind} (state in {broker.state_dir})")
        return broker.url

    def _migrate(self, url: str) -> DbCapabilities:
        delay = 0.5
        while True:
            try:
                with psycopg.connect(url, connect_timeout=5) as conn:
                    return prepare_database(conn, self.settings)
            except psycopg.OperationalError as err:
                log.warning("database not reachable (%s); retrying in %.1fs", err, delay)
                time.sleep(delay)
                delay = min(delay * 2, 10)

    def readiness(self) -> Mapping[str, bool]:
        db_ok = False
        if self.pool is not None:
            try:
                with self.pool.connection(timeout=2) as conn:
                    conn.execute("SELECT 1")
                db_ok = True
            except Exception:  # any failure means "not ready"
                db_ok = False
        ingest = self.ingest
        return {
            "database": db_ok and (ingest is None or ingest.database_up),
            "broker": ingest is not None and ingest.broker_connected,
        }

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        db_url = self._database_url()
        broker_url = self._broker_url()
        s = self.settings  # after _broker_url, which may switch the MQTT protocol
        self.endpoints.database = _redact(db_url)
        self.endpoints.broker = _redact_broker(broker_url)
        self.capabilities = self._migrate(db_url)
        self.pool = create_pool(s.database, db_url)
        self.pool.open(wait=False)
        self._stoppers.append(self.pool.close)

        reading_sinks: list[ReadingSink] = []
        status_sinks: list[StatusSink] = []
        frame_sink: FrameSink | None = None
        ctx = ApiContext(self.pool, self.registry, self.readiness)
        self.api_context = ctx

        # [subjects] ------------------------------------------------------------------
        # Alerts may set subjects_service.repository.on_change to append edits to the audit
        # chain inside the editing transaction.
        subjects_service = SubjectsService(s.subjects, self.pool, self.registry)
        subjects_service.start()
        self._stoppers.append(subjects_service.stop)
        ctx.provide(SubjectsService, subjects_service)
        ctx.provide(SubjectDirectory, subjects_service.directory)
        # [rules] ---------------------------------------------------------------------
        # Alerts append their ClueSink here; the service keeps this list by reference.
        clue_sinks: list[ClueSink] = []
        rule_service = RuleService(
            s.rules, self.pool, self.registry, subjects_service.directory, clue_sinks
        )
        ctx.provide(RuleService, rule_service)
        # A new binding reaches the rules within a tick, not at the periodic refresh.
        subjects_service.directory.add_listener(rule_service.directory_changed)
        rule_service.start()
        self._stoppers.append(rule_service.stop)

        def reload_rules() -> None:
            rule_service.reload()  # an invalid set is logged and the old one kept

        self._reloaders.append(reload_rules)
        reading_sinks.append(rule_service)
        status_sinks.append(rule_service)
        # [alerts] --------------------------------------------------------------------
        alert_service = AlertService(s.alerts, self.pool, self.registry, subjects_service.directory)
        # Subject edits are audited inside the editing transaction.
        subjects_service.repository.on_change = alert_service.subject_change_hook
        clue_sinks.append(alert_service)
        ctx.provide(AlertService, alert_service)
        alert_service.start()
        # Stopped after the rules (stoppers run in reverse) so their last clues still land.
        self._stoppers.insert(self._stoppers.index(rule_service.stop), alert_service.stop)
        # [video] ---------------------------------------------------------------------
        if s.video.enabled:
            # Status sinks are passed by reference: camera offline reaches the rules too.
            # Retention asks alerts whether an open or recent alert still needs evidence.
            video_service = VideoService(
                s.video,
                self.pool,
                self.registry,
                s.state_dir,
                detection_sink=rule_service,
                status_sinks=status_sinks,
                guard=alert_service,
                ownership=DirectoryOwnership(subjects_service.directory),
            )
            ctx.provide(VideoService, video_service)
            video_service.start()
            self._stoppers.append(video_service.stop)
            frame_sink = video_service

        self.ingest = IngestService(
            s.mqtt,
            s.ingest,
            s.storage,
            broker_url,
            db_url,
            self.pool,
            self.registry,
            reading_sinks=reading_sinks,
            status_sinks=status_sinks,
            frame_sink=frame_sink,
        )
        ctx.provide(IngestService, self.ingest)
        self.ingest.start()
        # Stopped first (stoppers run in reverse), so the writer drains before the rest.
        self._stoppers.append(self.ingest.stop)
        self._start_http(ctx)

    def _start_http(self, ctx: ApiContext) -> None:
        config = uvicorn.Config(
            create_app(ctx, self.settings.http),
            host=self.settings.http.host,
            port=self.settings.http.port,
            log_level="warning",
            access_log=False,
            # Open event streams (the live board) must not hold shutdown for long.
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="http", daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the HTTP server did not start on "
                    f"{self.settings.http.host}:{self.settings.http.port}"
                )
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        self.endpoints.http = f"http://{self.settings.http.host}:{port}"
        self._http, self._http_thread = server, thread

        def stop_http() -> None:
            server.should_exit = True
            thread.join(10)

        self._stoppers.append(stop_http)

    @property
    def http_port(self) -> int:
        return int(self.endpoints.http.rsplit(":", 1)[1])

    def reload(self) -> None:
        """SIGHUP: reload what can be reloaded (rules)."""
        for reload in self._reloaders:
            reload()

    def stop(self) -> None:
        while self._stoppers:
            stopper = self._stoppers.pop()
            try:
                stopper()
            except Exception:
                log.exception("error while stopping")
        if self._embedded_broker is not None:
            self._embedded_broker.stop()
        if self._embedded_pg is not None:
            self._embedded_pg.stop()

    def __enter__(self) -> OffsiteApp:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
