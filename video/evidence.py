"""Evidence fixing (取证固证): snapshots stored by SHA-256, verified on every read, kept
while an alert needs them."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from video.frames import Snapshot
from video.metrics import VideoMetrics
from video.models import Detection

log = logging.getLogger(__name__)

SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")


class EvidenceGuard(Protocol):
    """Tells retention which evidence an open or recent alert still needs (alerts implement)."""

    def is_protected(self, evidence_id: str) -> bool: ...


class CameraOwnership(Protocol):
    """The departments that own a camera's subject; None when not known."""

    def owner_departments(self, camera_id: str) -> frozenset[str] | None: ...


class _Departments(Protocol):
    @property
    def departments(self) -> frozenset[str]: ...


class DeviceLookup(Protocol):
    """Anything that maps a device to a context with `departments` (the subject directory)."""

    def context(self, device_id: str) -> _Departments | None: ...


class DirectoryOwnership:
    """CameraOwnership from the subject directory: the departments supervising the subject
    the camera is bound to; None (unknown) for an unbound camera."""

    def __init__(self, directory: DeviceLookup) -> None:
        self.directory = directory

    def owner_departments(self, camera_id: str) -> frozenset[str] | None:
        ctx = self.directory.context(camera_id)
        return None if ctx is None else ctx.departments


class KeepAll:
    """The guard used when none is wired: retention then removes nothing."""

    def is_protected(self, evidence_id: str) -> bool:
        return True


class Variant(StrEnum):
    """The files of one evidence row; *_shared have faces blurred (for other departments)."""

    ANNOTATED = "annotated"
    CLEAN = "clean"
    ANNOTATED_SHARED = "annotated_shared"
    CLEAN_SHARED = "clean_shared"

    @property
    def shared(self) -> Variant:
        return Variant(self.value if self.value.endswith("_shared") else self.value + "_shared")

    @property
    def is_shared(self) -> bool:
        return self.value.endswith("_shared")


class EvidenceError(Exception):
    """Base of evidence read failures."""


class EvidenceNotFoundError(EvidenceError):
    """No evidence file has that hash."""


class EvidenceCorruptError(EvidenceError):
    """The stored bytes no longer hash to their name: tampered with or damaged."""


@dataclass(frozen=True, slots=True)
class EvidenceFile:
    sha256: str
    size: int
    variant: Variant


@dataclass(frozen=True, slots=True)
class EvidenceRecord:
    """One episode's evidence row; `sha256` (of the annotated snapshot) is its id."""

    sha256: str
    camera_id: str
    episode_id: str
    captured_at: datetime
    stored_at: datetime
    size: int
    faces: int
    detections: list[dict[str, Any]]
    files: dict[Variant, EvidenceFile]


def detection_json(d: Detection, detail: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "label": d.label,
        "score": round(d.score, 4),
        "box": {"x": d.box.x, "y": d.box.y, "w": d.box.w, "h": d.box.h},
        "zone": d.zone,
        "episode_id": d.episode_id,
        "frames": d.frames,
        "time": d.time.isoformat(),
    }
    if detail:
        out["detail"] = detail
    return out


class EvidenceStore:
    """Files at <dir>/<aa>/<bb>/<sha256>.jpg; rows in video_evidence(_files)."""

    def __init__(self, directory: Path, pool: ConnectionPool, metrics: VideoMetrics) -> None:
        self.directory = directory
        self.pool = pool
        self.metrics = metrics

    def path_of(self, sha256: str) -> Path:
        if not SHA256_PATTERN.match(sha256):
            raise ValueError(f"{sha256!r} is not a lower-case hex SHA-256")
        return self.directory / sha256[:2] / sha256[2:4] / f"{sha256}.jpg"

    def _write_file(self, data: bytes) -> tuple[str, int]:
        digest = hashlib.sha256(data).hexdigest()
        path = self.path_of(digest)
        if path.exists():
            return digest, 0  # same content, same name: stored once
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest, len(data)

    def store(
        self,
        camera_id: str,
        captured_at: datetime,
        snapshot: Snapshot,
        detections: Sequence[dict[str, Any]],
    ) -> str:
        """Write the files, then the row; returns the evidence id (the annotated hash)."""
        images = {
            Variant.ANNOTATED: snapshot.annotated,
            Variant.CLEAN: snapshot.clean,
            Variant.ANNOTATED_SHARED: snapshot.annotated_shared,
            Variant.CLEAN_SHARED: snapshot.clean_shared,
        }
        files: dict[Variant, tuple[str, int]] = {}
        written = 0
        for variant, data in images.items():
            digest, new_bytes = self._write_file(data)
            files[variant] = (digest, len(data))
            written += new_bytes
        evidence_id, size = files[Variant.ANNOTATED]
        with self.pool.connection() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO video_evidence (sha256, camera_id, episode_id, captured_at,"
                " size_bytes, faces, detections) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (sha256) DO NOTHING",
                (evidence_id, camera_id, snapshot.episode_id, captured_at, size,
                 snapshot.faces, Jsonb(list(detections))),
            )  # fmt: skip
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO video_evidence_files (evidence_sha256, variant, sha256,"
                    " size_bytes) VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    [(evidence_id, v.value, d, n) for v, (d, n) in files.items()],
                )
        self.metrics.evidence_bytes.inc(written)
        self.metrics.evidence_stored.inc()
        return evidence_id

    def find(self, sha256: str) -> tuple[EvidenceRecord, Variant] | None:
        """The row holding a file with this hash, and which file it is (originals first)."""
        if not SHA256_PATTERN.match(sha256):
            return None
        with self.pool.connection() as conn:
            hit = conn.execute(
                "SELECT evidence_sha256, variant FROM video_evidence_files WHERE sha256 = %s"
                " ORDER BY variant LIKE '%%_shared', variant LIMIT 1",
                (sha256,),
            ).fetchone()
            if hit is None:
                return None
            record = self._record(conn, hit[0])
        return (record, Variant(hit[1])) if record is not None else None

    def record(self, evidence_id: str) -> EvidenceRecord | None:
        with self.pool.connection() as conn:
            return self._record(conn, evidence_id)

    def _record(self, conn: psycopg.Connection[Any], evidence_id: str) -> EvidenceRecord | None:
        row = conn.execute(
            "SELECT sha256, camera_id, episode_id, captured_at, stored_at, size_bytes, faces,"
            " detections FROM video_evidence WHERE sha256 = %s",
            (evidence_id,),
        ).fetchone()
        if row is None:
            return None
        files = {
            Variant(v): EvidenceFile(d, n, Variant(v))
            for v, d, n in conn.execute(
                "SELECT variant, sha256, size_bytes FROM video_evidence_files"
                " WHERE evidence_sha256 = %s",
                (evidence_id,),
            )
        }
        sha, camera, episode, captured, stored, size, faces, detections = row
        return EvidenceRecord(
            sha, camera, episode, captured, stored, size, faces, detections, files=files
        )

    def read(self, sha256: str) -> bytes:
        """The file's bytes, re-hashed: a mismatch is logged, counted and raised."""
        path = self.path_of(sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError as err:
            self.metrics.evidence_verify_failures.inc()
            log.error("evidence %s is missing from %s", sha256, path)
            raise EvidenceNotFoundError(f"evidence file {sha256} is missing") from err
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            self.metrics.evidence_verify_failures.inc()
            log.error("evidence %s FAILED verification: the file now hashes to %s", sha256,
                      actual)  # fmt: skip
            raise EvidenceCorruptError(
                f"evidence file {sha256} failed verification (its content hashes to {actual})"
            )
        return data

    def apply_retention(self, now: datetime, retention: timedelta, guard: EvidenceGuard) -> int:
        """Remove rows older than `retention` that no alert needs, then unreferenced files."""
        cutoff = now - retention
        with self.pool.connection() as conn:
            old = [
                r[0]
                for r in conn.execute(
                    "SELECT sha256 FROM video_evidence WHERE stored_at < %s", (cutoff,)
                )
            ]
        doomed = [e for e in old if not guard.is_protected(e)]
        if not doomed:
            return 0
        with self.pool.connection() as conn, conn.transaction():
            gone = conn.execute(
                "DELETE FROM video_evidence_files WHERE evidence_sha256 = ANY(%s) RETURNING sha256",
                (doomed,),
            ).fetchall()
            conn.execute("DELETE FROM video_evidence WHERE sha256 = ANY(%s)", (doomed,))
            hashes = sorted({g[0] for g in gone})
            still = {
                r[0]
                for r in conn.execute(
                    "SELECT DISTINCT sha256 FROM video_evidence_files WHERE sha256 = ANY(%s)",
                    (hashes,),
                )
            }
        for digest in hashes:
            if digest not in still:
                self.path_of(digest).unlink(missing_ok=True)
        self.metrics.evidence_removed.inc(len(doomed))
        log.info("evidence retention removed %d snapshots older than %s", len(doomed), cutoff)
        return len(doomed)
