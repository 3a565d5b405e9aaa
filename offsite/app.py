"""The composition root: builds every service from Settings and runs them together."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import uvicorn
from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool

from alerts.service import AlertService
from alerts.subject_audit import SubjectAuditHook
from api.app import create_app, create_health_app
from api.context import ApiContext
from api.people import create_first_admin
from api.settings import AuthSettings
from failover.feed import EngineFeed
from failover.metrics import EngineMetrics
from failover.repair import GapRepair
from failover.role import EngineRole
from hj212.service import Hj212Service, worker_packet_decoder
from ingest.metrics import IngestMetrics
from ingest.models import FrameSink, Reading, ReadingSink, StatusSink
from ingest.service import IngestService
from ingest.storage import StorageMaintainer
from ingest.worker_process import WorkerSpec
from ingest.workers import worker_specs
from ingest.writer import store_missing
from offsite.db import DbCapabilities, create_pool
from offsite.embedded import EmbeddedBroker, EmbeddedPostgres
from offsite.migrations import MigrationError, prepare
from offsite.settings import ConfigError, Settings
from roles.plan import Parts, plan
from rules.ledger import ClueLedgerReader
from rules.service import RuleService
from subjects.directory import SubjectDirectory
from subjects.service import SubjectsService
from supervise.worker import Supervisor
from video.evidence import DirectoryOwnership
from video.relay import DetectionRelay
from video.service import VideoService
from web.app import install as install_web

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Endpoints:
    """Where everything listens, printed at start."""

    database: str = ""
    broker: str = ""
    http: str = ""
    hj212: str = ""
    embedded: list[str] = field(default_factory=list)
    # The first platform admin's password when this start created it: printed once, never kept.
    first_admin_password: str | None = None


class StartError(Exception):
    """offsite cannot start: the message says what is wrong and what to check."""


# SQLSTATE classes and codes that no retry can fix: wrong credentials, no such database,
# not allowed to connect, a bad option.
_FATAL_SQLSTATES = frozenset({"28000", "28P01", "3D000", "42501", "42704", "08004"})
_FATAL_MESSAGES = (
    "password authentication failed",
    "no password supplied",
    'role "',
    "does not exist",
    "no pg_hba.conf entry",
    "invalid connection option",
    "invalid sslmode",
)


def is_fatal_connect_error(err: psycopg.Error) -> bool:
    """True for errors a retry cannot fix (authentication, configuration)."""
    if err.sqlstate in _FATAL_SQLSTATES:
        return True
    # A refused login is reported before a session exists, often without a SQLSTATE.
    text = str(err)
    return isinstance(err, psycopg.ProgrammingError) or any(m in text for m in _FATAL_MESSAGES)


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


def ingest_worker_specs(settings: Settings, numbers: list[int]) -> list[WorkerSpec]:
    """The specs of ingest workers `numbers` as `offsite run` with these settings starts
    them (client id, login, shared group, decoder): for `offsite ingest retire`."""
    s = settings
    if not s.mqtt.url or not s.database.url:
        raise ConfigError(
            "retiring an ingest worker needs mqtt.url and database.url: the broker and the"
            " database its `offsite run` uses"
        )
    specs = worker_specs(
        max(numbers),
        s.mqtt,
        s.ingest,
        s.storage,
        s.mqtt.url,
        s.database.url,
        frames_elsewhere=s.video.enabled,
        log_level=s.log_level,
        # The engine is elsewhere: HJ 212 readings in the session are relayed to it.
        relay=s.hj212.enabled,
        packet_decoder=partial(worker_packet_decoder, s.hj212) if s.hj212.enabled else None,
    )
    return [spec for spec in specs if spec.index in numbers]


class OffsiteApp:
    """One process: embedded servers if asked, migrations, ingest, rules, alerts, video, HTTP."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = CollectorRegistry()
        self.endpoints = Endpoints()
        self._embedded_pg: EmbeddedPostgres | None = None
        self._embedded_broker: EmbeddedBroker | None = None
        # Each stopper returns what did not stop (a bool, or names of threads), if it knows.
        self._stoppers: list[Callable[[], object]] = []
        self.supervisor = Supervisor(self.registry)
        self._reloaders: list[Callable[[], None]] = []
        self.pool: ConnectionPool | None = None
        self.ingest: IngestService | None = None
        self.hj212: Hj212Service | None = None
        self.capabilities: DbCapabilities | None = None
        self._http: uvicorn.Server | None = None
        self._http_thread: threading.Thread | None = None
        self.api_context: ApiContext | None = None
        # [roles] which parts this process runs (every part unless --role / roles says).
        self.parts: Parts = plan(settings.roles, settings.ingest.workers)
        parts, video = self.parts, settings.video
        frames_here = parts.frames_in_process or video.partition == "leases"
        if parts.video and video.enabled and not frames_here:
            # Without an in-process ingest intake, frames reach a video worker only through
            # the per-camera subscriptions of a leased worker; refusing beats a silent idle.
            raise ConfigError(
                "video runs in this process without the ingest intake (role or ingest.workers > 1):"
                " set video.partition: leases so the video worker subscribes to its cameras"
            )
        self.engine_role: EngineRole | None = None

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
        """Migrate, retrying an unreachable database until the start deadline; a refused
        login or a bad setting ends the start at once (retrying cannot fix those)."""
        db = self.settings.database
        deadline = time.monotonic() + db.start_timeout_s
        delay = 0.5
        where = _redact(url)
        while True:
            try:
                caps = prepare(url, self.settings, int(max(1, db.connect_timeout_s)))
                if self.settings.auth.first_run_admin:
                    with psycopg.connect(
                        url, connect_timeout=int(max(1, db.connect_timeout_s))
                    ) as conn:
                        self._first_run(conn)
                return caps
            except MigrationError as err:
                raise StartError(f"database {where}: {err}") from err
            except psycopg.Error as err:
                if is_fatal_connect_error(err):
                    raise StartError(
                        f"database {where} refused offsite: {str(err).strip()} (check the user,"
                        " password and database name in database.url / OFFSITE_DATABASE__URL)"
                    ) from err
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StartError(
                        f"database {where} did not answer within database.start_timeout_s ="
                        f" {db.start_timeout_s:g} s: {str(err).strip()}"
                    ) from err
                log.warning("database not reachable (%s); retrying in %.1fs",
                            str(err).strip(), delay)  # fmt: skip
                time.sleep(min(delay, left))
                delay = min(delay * 2, 10)

    def _first_run(self, conn: psycopg.Connection[Any]) -> None:
        """A site with no accounts gets a platform admin, so someone can sign in at all."""
        created = create_first_admin(conn)
        if created is not None:
            person, password = created
            log.warning("no accounts existed: created the platform admin %r", person.login)
            self.endpoints.first_admin_password = password

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
        checks = {"database": db_ok and (ingest is None or ingest.database_up)}
        if self.parts.ingest:  # [roles] only ingest holds a broker session
            checks["broker"] = ingest is not None and ingest.broker_connected
            if ingest is not None:
                checks.update(ingest.worker_checks())
        # One check per supervised worker, named, so a dead or stuck one shows which it is.
        for worker in self.supervisor.health():
            checks[f"worker:{worker.name}"] = worker.healthy
        if self.engine_role is not None:
            checks.update(self.engine_role.readiness())
        if self.hj212 is not None:
            # The gateway's event loop is its own thread (asyncio, not a step loop).
            checks["hj212"] = self.hj212.serving
        return checks

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
        # [roles] Every service object is built in every process (the API reads through
        # them); only the workers of the roles this process runs are started.
        ingest_here, engine_here = self.parts.ingest, self.parts.engine
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
        ctx.provide(AuthSettings, s.auth)
        self.api_context = ctx

        # [subjects] ------------------------------------------------------------------
        # Every edit of the library is audited inside its own transaction (alerts' chain).
        subjects_service = SubjectsService(
            s.subjects,
            self.pool,
            self.registry,
            supervisor=self.supervisor,
            on_change=SubjectAuditHook(),
        )
        subjects_service.start()
        self._stoppers.append(subjects_service.stop)
        ctx.provide(SubjectsService, subjects_service)
        ctx.provide(SubjectDirectory, subjects_service.directory)
        # [failover] An engine that does not get committed readings from a writer in its own
        # process (no ingest role here, or ingest in child processes) is one of several:
        # elected by the lease, fenced, reading the broker itself (failover/). Otherwise,
        # today's single-process path: the writer hands it committed readings.
        role = None
        if engine_here and not self.parts.readings_in_process:
            role = EngineRole(s.engine, db_url, self.pool, EngineMetrics(self.registry))
            self.engine_role = role
        # [alerts] --------------------------------------------------------------------
        # Built before the rules, which hand it their committed clue changes as a wake-up;
        # it reads the changes themselves from the ledger past its watermark. Started
        # first, so stopped last (stoppers run in reverse): the rules' last clues land.
        alert_service = AlertService(
            s.alerts,
            self.pool,
            self.registry,
            subjects_service.directory,
            ledger=ClueLedgerReader(self.pool),
            supervisor=self.supervisor,
            fence=role.fence if role is not None else None,
        )
        ctx.provide(AlertService, alert_service)
        if engine_here and role is None:
            alert_service.start()
            self._stoppers.append(alert_service.stop)
        # [rules] ---------------------------------------------------------------------
        rule_service = RuleService(
            s.rules,
            self.pool,
            self.registry,
            subjects_service.directory,
            [alert_service],
            supervisor=self.supervisor,
            guard=role,
            replay=role.replay if role is not None else None,
        )
        ctx.provide(RuleService, rule_service)
        # A new binding reaches the rules within a tick, not at the periodic refresh.
        subjects_service.directory.add_listener(rule_service.directory_changed)
        if engine_here and role is None:
            rule_service.start()
            self._stoppers.append(rule_service.stop)
        elif s.rules.directory.is_dir():
            rule_service.ruleset = rule_service.load()  # the API shows the rule set

        def reload_rules() -> None:
            rule_service.reload()  # an invalid set is logged and the old one kept

        self._reloaders.append(reload_rules)
        if self.parts.readings_in_process:
            reading_sinks.append(rule_service)
            status_sinks.append(rule_service)
        # [video] ---------------------------------------------------------------------
        # [video scale-out] With camera leases any video worker, in any process, may
        # analyse a camera: detections reach the rules through video_detections (written
        # fenced by the lease), relayed in order past a durable watermark. The relay feeds
        # the rules, so it runs where the engine does (the active one, when elected).
        leased = s.video.partition == "leases"
        relay = None
        if leased and engine_here:
            relay = DetectionRelay(self.pool, rule_service, supervisor=self.supervisor)
            if role is None:
                relay.start()
                self._stoppers.append(relay.stop)
        if s.video.enabled and self.parts.video:
            # Status sinks are passed by reference: camera offline reaches the rules too.
            # Retention asks alerts whether an open or recent alert still needs evidence.
            video_service = VideoService(
                s.video,
                self.pool,
                self.registry,
                s.state_dir,
                detection_sink=None if leased else rule_service,
                status_sinks=status_sinks,
                guard=alert_service,
                ownership=DirectoryOwnership(subjects_service.directory),
                supervisor=self.supervisor,
                # [video scale-out] With camera leases the service subscribes to the frames
                # of the cameras it holds itself, and ignores those ingest hands over.
                frames_from=(broker_url, s.mqtt) if leased else None,
            )
            ctx.provide(VideoService, video_service)
            video_service.start()
            self._stoppers.append(video_service.stop)
            if self.parts.frames_in_process:
                frame_sink = video_service

        if ingest_here:
            self._start_ingest(broker_url, db_url, reading_sinks, status_sinks, frame_sink)
        if role is not None:
            self._start_elected(role, rule_service, alert_service, relay, broker_url, db_url)
        self._start_http(ctx)

    def _start_elected(
        self,
        role: EngineRole,
        rules: RuleService,
        alerts: AlertService,
        relay: DetectionRelay | None,
        broker_url: str,
        db_url: str,
    ) -> None:
        """A standby now; on winning the lease the rules, alerts and storage upkeep start."""
        s = self.settings
        maintainer = StorageMaintainer(
            s.storage, db_url, IngestMetrics(self.registry), self.supervisor
        )

        def activate() -> None:
            rules.start()  # rebuilds the state from the database
            alerts.start()
            if relay is not None:
                relay.start()
            maintainer.run_once()
            maintainer.start()

        pool = self.pool
        assert pool is not None

        def store_missing_readings(readings: Sequence[Reading]) -> int:
            with pool.connection() as conn:
                return store_missing(conn, readings)

        def make_feed() -> EngineFeed:
            # [failover] The engine's unshared stream stores what a broker restart kept
            # from ingest (failover/repair.py), in windows around its reconnects.
            repair = GapRepair(store_missing_readings, s.engine.repair_window_s, role.metrics,
                               self.supervisor)  # fmt: skip
            return EngineFeed(
                s.engine, s.mqtt, s.ingest, s.storage, broker_url, rules, role.metrics, repair
            )

        # Stoppers run in reverse: no new messages first, then the rules commit what they
        # hold, the alerts apply it, upkeep ends, and only then is the lock let go.
        self._stoppers += [role.release, maintainer.stop, alerts.stop, rules.stop, role.stop_feed]
        if relay is not None:
            self._stoppers.append(relay.stop)  # before the rules: nothing new reaches them
        role.start(make_feed, activate)

    def _start_ingest(
        self,
        broker_url: str,
        db_url: str,
        reading_sinks: list[ReadingSink],
        status_sinks: list[StatusSink],
        frame_sink: FrameSink | None,
    ) -> None:
        s, ctx = self.settings, self.api_context
        assert self.pool is not None
        assert ctx is not None
        # [hj212] ---------------------------------------------------------------------
        if s.hj212.enabled:
            self.hj212 = Hj212Service(s.hj212, s.ingest, s.storage, self.pool, self.registry)
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
            packet_decoder=self.hj212.mqtt if self.hj212 is not None else None,
            supervisor=self.supervisor,
            # [roles] N > 0: the MQTT intake runs in N child processes, this one keeps the
            # writer for the HJ 212 gateway and the storage upkeep.
            workers=self.parts.ingest_workers,
            frames_elsewhere=frame_sink is None and s.video.enabled,
            log_level=s.log_level,
            # Storage upkeep runs once: here in the single-process engine, else in the
            # elected engine (an ingest-only process leaves it to the engine).
            maintain=self.parts.engine and self.engine_role is None,
            # [failover] HJ 212 readings reach an engine in another process by relay.
            relay=self.hj212 is not None and not self.parts.readings_in_process,
            # [hj212] Ingest children decode the hj212 channel with a decoder of their own.
            child_packet_decoder=(
                partial(worker_packet_decoder, s.hj212) if s.hj212.enabled else None
            ),
        )
        ctx.provide(IngestService, self.ingest)
        self.ingest.start()
        # Stopped first (stoppers run in reverse), so the writer drains before the rest.
        self._stoppers.append(self.ingest.stop)
        if self.hj212 is not None:
            # Feeds ingest's writer; stopped before it, so nothing new arrives while it drains.
            self.hj212.start(self.ingest.writer)
            self._stoppers.append(self.hj212.stop)
            self.endpoints.hj212 = f"tcp://{s.hj212.host}:{self.hj212.port}"

    def _start_http(self, ctx: ApiContext) -> None:
        if self.parts.http:
            app = create_app(ctx, self.settings.http)
            install_web(app, ctx, self.settings.web)
        else:
            app = create_health_app(ctx)  # [roles] health and metrics only
        config = uvicorn.Config(
            app,
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

        def stop_http() -> bool:
            server.should_exit = True
            thread.join(10)
            return not thread.is_alive()

        self._stoppers.append(stop_http)

    @property
    def http_port(self) -> int:
        return int(self.endpoints.http.rsplit(":", 1)[1])

    def reload(self) -> None:
        """SIGHUP: reload what can be reloaded (rules)."""
        for reload in self._reloaders:
            reload()

    def stop(self) -> list[str]:
        """Stop in the reverse order of start; returns (and logs) what did not stop."""
        left: list[str] = []
        while self._stoppers:
            stopper = self._stoppers.pop()
            name = getattr(stopper, "__qualname__", repr(stopper))
            try:
                result = stopper()
            except Exception:
                log.exception("error while stopping %s", name)
                left.append(name)
                continue
            if result is False:
                left.append(name)
            elif isinstance(result, list) and result:
                left += [str(r) for r in result]
        if self._embedded_broker is not None:
            self._embedded_broker.stop()
        if self._embedded_pg is not None:
            self._embedded_pg.stop()
        # Threads of the supervisor that are still running were not stopped by their owner.
        left += [h.name for h in self.supervisor.health() if h.name not in left]
        if left:
            log.error("these did not stop in time: %s", ", ".join(left))
        return left

    def __enter__(self) -> OffsiteApp:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
