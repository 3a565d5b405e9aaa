"""Prometheus collectors of the subject library."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class SubjectsMetrics:
    """Library size, directory refreshes, imports and edits; no device ids or codes in labels."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.subjects = Gauge(
            "offsite_subjects_library_subjects",
            "Subjects in the library, by credit grade (as of the last directory refresh)",
            ["grade"],
            registry=registry,
        )
        self.cross_department = Gauge(
            "offsite_subjects_cross_department_subjects",
            "Subjects supervised now by two or more departments (cross-department library)",
            registry=registry,
        )
        self.bindings = Gauge(
            "offsite_subjects_device_bindings",
            "Devices bound to a subject (as of the last directory refresh)",
            registry=registry,
        )
        self.refreshes = Counter(
            "offsite_subjects_directory_refreshes_total",
            "Directory cache reloads, by scope (full, partial)",
            ["scope"],
            registry=registry,
        )
        self.refresh_seconds = Histogram(
            "offsite_subjects_directory_refresh_seconds",
            "Time to reload the directory cache, by scope",
            ["scope"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.refresh_errors = Counter(
            "offsite_subjects_directory_refresh_errors_total",
            "Directory reloads that failed (the previous cache stays in use)",
            registry=registry,
        )
        self.imports = Counter(
            "offsite_subjects_imports_total",
            "Bulk imports, by result (committed, rejected, dry_run)",
            ["result"],
            registry=registry,
        )
        self.import_rows = Counter(
            "offsite_subjects_import_rows_total",
            "Rows seen by bulk imports, by result (created, updated, unchanged, invalid)",
            ["result"],
            registry=registry,
        )
        self.changes = Counter(
            "offsite_subjects_changes_total",
            "Edits of the library committed, by kind",
            ["kind"],
            registry=registry,
        )
