"""The subject library as one service: repository, directory cache and importer, wired."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool

from subjects.directory import SubjectDirectory
from subjects.importer import SubjectImporter
from subjects.metrics import SubjectsMetrics
from subjects.repository import ChangeHook, SubjectRepository
from subjects.settings import SubjectsSettings
from supervise.worker import Supervisor


class SubjectsService:
    """Builds the library's parts; `on_change` runs inside each writing transaction (audit)."""

    def __init__(
        self,
        settings: SubjectsSettings,
        pool: ConnectionPool,
        registry: CollectorRegistry,
        on_change: ChangeHook | None = None,
        supervisor: Supervisor | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.metrics = SubjectsMetrics(registry)
        self.repository = SubjectRepository(pool, self.metrics, on_change=on_change)
        self.directory = SubjectDirectory(
            pool,
            self.metrics,
            refresh_interval_s=settings.refresh_interval_s,
            listen=settings.listen,
            supervisor=supervisor,
        )
        self.repository.add_listener(self.directory.apply)
        self.importer = SubjectImporter(
            self.repository,
            self.metrics,
            max_rows=settings.import_max_rows,
            max_bytes=settings.import_max_bytes,
        )

    def start(self) -> None:
        self.directory.start()

    def stop(self) -> None:
        self.directory.stop()
