"""Evidence round trip on a real database: stored hash = served hash; tampering is caught."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import psycopg
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool
from skimage import data

from api.app import create_app
from api.auth import create_key
from api.context import ApiContext
from video.evidence import EvidenceCorruptError, Variant, detection_json
from video.frames import EpisodeUpdate
from video.models import Box, Detection
from video.service import VideoService
from video.settings import VideoSettings
from video.snapshot import FaceBlurrer, make_snapshot

CAPTURED = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)


class Owners:
    def __init__(self, owners: dict[str, frozenset[str]]) -> None:
        self.owners = owners

    def owner_departments(self, camera_id: str) -> frozenset[str] | None:
        return self.owners.get(camera_id)


class Guard:
    def __init__(self, protected: set[str]) -> None:
        self.protected = protected

    def is_protected(self, evidence_id: str) -> bool:
        return evidence_id in self.protected


@pytest.fixture
def pool(db_url: str) -> Any:
    with ConnectionPool(db_url, min_size=1, max_size=4, open=True) as p:
        yield p


def make_service(pool: ConnectionPool, tmp_path: Path, **kw: Any) -> VideoService:
    settings = VideoSettings(cameras=[{"id": "cam-a"}, {"id": "cam-b"}])
    return VideoService(settings, pool, CollectorRegistry(), tmp_path, **kw)


def store_one(svc: VideoService, camera: str = "cam-a", episode: str = "ep-1") -> str:
    image = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    update = EpisodeUpdate("person", 0.9, Box(100, 20, 300, 480), "gate", episode, 3, True)
    snap = make_snapshot(image, update, FaceBlurrer(), 90)
    det = Detection(camera, "person", 0.9, update.box, "gate", CAPTURED, episode, 3)
    return svc.evidence.store(camera, CAPTURED, snap, [detection_json(det)])


def test_store_and_read_back_verified(pool: ConnectionPool, tmp_path: Path) -> None:
    svc = make_service(pool, tmp_path)
    evidence_id = store_one(svc)
    record = svc.evidence.record(evidence_id)
    assert record is not None
    assert record.camera_id == "cam-a"
    assert record.captured_at == CAPTURED
    assert record.faces == 1
    assert record.detections[0]["label"] == "person"
    assert set(record.files) == set(Variant)
    for f in record.files.values():
        data_ = svc.evidence.read(f.sha256)
        assert hashlib.sha256(data_).hexdigest() == f.sha256
        assert len(data_) == f.size
    assert evidence_id == record.files[Variant.ANNOTATED].sha256
    # Files live under the evidence directory, named by their hash.
    assert svc.evidence.path_of(evidence_id).is_relative_to(tmp_path / "evidence")
    # Storing the same snapshot again is harmless: same id, no second row.
    assert store_one(svc) == evidence_id
    with pool.connection() as conn:
        assert conn.execute("SELECT count(*) FROM video_evidence").fetchone() == (1,)


def test_tampered_file_is_detected_and_counted(pool: ConnectionPool, tmp_path: Path) -> None:
    registry = CollectorRegistry()
    settings = VideoSettings()
    svc = VideoService(settings, pool, registry, tmp_path)
    evidence_id = store_one(svc)
    path = svc.evidence.path_of(evidence_id)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(EvidenceCorruptError, match="failed verification"):
        svc.evidence.read(evidence_id)
    assert registry.get_sample_value("offsite_video_evidence_verify_failures_total") == 1


def _client(db_url: str, pool: ConnectionPool, svc: VideoService) -> TestClient:
    ctx = ApiContext(pool, CollectorRegistry(), lambda: {})
    ctx.provide(VideoService, svc)
    return TestClient(create_app(ctx))


def _key(db_url: str, department: str, role: str = "viewer") -> dict[str, str]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        return {"Authorization": f"Bearer {create_key(conn, department, role)}"}


def _share(db_url: str, evidence_id: str, departments: list[str]) -> None:
    """An alert whose clue carries the evidence, with these departments taking part."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO alerts (subject_key, state, severity, departments, opened_at,"
            " updated_at) VALUES ('device:cam-a', 'open', 'major', %s, now(), now())"
            " RETURNING id",
            (departments,),
        ).fetchone()
        assert row is not None
        conn.execute(
            "INSERT INTO alert_clues (clue_id, alert_id, fingerprint, rule_id, rule_version,"
            " title, department, severity, status, device_ids, evidence_ids, started_at,"
            " summary, updated_at) VALUES (%s, %s, 'f', 'site-fire', 1, 'fire', %s, 'major',"
            " 'firing', '{cam-a}', %s, now(), 'fire at cam-a', now())",
            (row[0] * 1000, row[0], departments[0], [evidence_id]),
        )


def test_api_serves_hash_and_blurs_for_other_departments(
    db_url: str, pool: ConnectionPool, tmp_path: Path
) -> None:
    svc = make_service(pool, tmp_path, ownership=Owners({"cam-a": frozenset({"EMB"})}))
    evidence_id = store_one(svc)
    record = svc.evidence.record(evidence_id)
    assert record is not None
    client = _client(db_url, pool, svc)
    owner, other = _key(db_url, "EMB"), _key(db_url, "EEB")

    r = client.get(f"/api/v1/evidence/{evidence_id}", headers=owner)
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/jpeg"
    assert r.headers["x-content-sha256"] == evidence_id
    assert hashlib.sha256(r.content).hexdigest() == evidence_id
    assert r.headers["x-evidence-variant"] == "annotated"

    # Another department sees nothing until an alert it takes part in carries the evidence.
    assert client.get(f"/api/v1/evidence/{evidence_id}", headers=other).status_code == 404
    assert client.get(f"/api/v1/evidence/{evidence_id}/meta", headers=other).status_code == 404
    _share(db_url, evidence_id, ["EMB", "EEB"])
    r = client.get(f"/api/v1/evidence/{evidence_id}", headers=other)
    assert r.status_code == 200
    shared = record.files[Variant.ANNOTATED_SHARED].sha256
    assert shared != evidence_id
    assert r.headers["x-content-sha256"] == shared
    assert hashlib.sha256(r.content).hexdigest() == shared
    assert r.headers["x-evidence-variant"] == "annotated_shared"

    # Asking for the clean original by its own hash: still blurred for another department.
    clean = record.files[Variant.CLEAN].sha256
    r = client.get(f"/api/v1/evidence/{clean}", headers=other)
    assert r.headers["x-content-sha256"] == record.files[Variant.CLEAN_SHARED].sha256
    r = client.get(f"/api/v1/evidence/{clean}", headers=owner)
    assert r.headers["x-content-sha256"] == clean
    r = client.get(f"/api/v1/evidence/{clean}?shared=true", headers=owner)
    assert r.headers["x-evidence-variant"] == "clean_shared"

    meta = client.get(f"/api/v1/evidence/{evidence_id}/meta", headers=other).json()
    assert meta["camera_id"] == "cam-a"
    assert meta["original_access"] is False
    assert {f["variant"] for f in meta["files"]} == {"annotated_shared", "clean_shared"}
    assert meta["detections"][0]["zone"] == "gate"
    meta = client.get(f"/api/v1/evidence/{evidence_id}/meta", headers=owner).json()
    assert meta["original_access"] is True
    assert len(meta["files"]) == 4

    assert client.get(f"/api/v1/evidence/{'0' * 64}", headers=owner).status_code == 404
    assert client.get("/api/v1/evidence/not-a-hash", headers=owner).status_code == 422
    assert client.get(f"/api/v1/evidence/{evidence_id}").status_code == 401


def test_unknown_ownership_blurs_for_all_but_the_platform_admin(
    db_url: str, pool: ConnectionPool, tmp_path: Path
) -> None:
    svc = make_service(pool, tmp_path)  # no ownership callback wired
    evidence_id = store_one(svc)
    client = _client(db_url, pool, svc)
    _share(db_url, evidence_id, ["EMB"])
    r = client.get(f"/api/v1/evidence/{evidence_id}", headers=_key(db_url, "EMB", "officer"))
    assert r.headers["x-evidence-variant"] == "annotated_shared"
    r = client.get(f"/api/v1/evidence/{evidence_id}", headers=_key(db_url, "EMB", "admin"))
    assert r.headers["x-evidence-variant"] == "annotated_shared"
    platform = _key(db_url, "EMB", "platform_admin")
    r = client.get(f"/api/v1/evidence/{evidence_id}", headers=platform)
    assert r.headers["x-evidence-variant"] == "annotated"


def test_api_reports_a_tampered_file_as_an_error(
    db_url: str, pool: ConnectionPool, tmp_path: Path
) -> None:
    svc = make_service(pool, tmp_path, ownership=Owners({"cam-a": frozenset({"EMB"})}))
    evidence_id = store_one(svc)
    svc.evidence.path_of(evidence_id).write_bytes(b"\xff\xd8 not what was stored")
    r = _client(db_url, pool, svc).get(f"/api/v1/evidence/{evidence_id}",
                                       headers=_key(db_url, "EMB"))  # fmt: skip
    assert r.status_code == 500
    assert "failed verification" in r.json()["detail"]


def test_cameras_listed_per_department(db_url: str, pool: ConnectionPool, tmp_path: Path) -> None:
    svc = make_service(pool, tmp_path, ownership=Owners({"cam-a": frozenset({"EMB"})}))
    client = _client(db_url, pool, svc)
    mine = client.get("/api/v1/cameras", headers=_key(db_url, "EMB")).json()
    assert [c["camera_id"] for c in mine] == ["cam-a"]
    assert mine[0]["source"] == "mqtt"
    assert mine[0]["state"] == "unknown"
    assert client.get("/api/v1/cameras", headers=_key(db_url, "EEB")).json() == []
    # A department admin sees only the department's cameras; the platform admin the unbound.
    assert client.get("/api/v1/cameras", headers=_key(db_url, "EEB", "admin")).json() == []
    unbound = client.get("/api/v1/cameras", headers=_key(db_url, "EEB", "platform_admin")).json()
    assert [c["camera_id"] for c in unbound] == ["cam-b"]


def test_retention_keeps_protected_and_recent_evidence(
    pool: ConnectionPool, tmp_path: Path
) -> None:
    svc = make_service(pool, tmp_path)
    old_kept = store_one(svc, episode="ep-old-kept")
    old_gone = store_one(svc, camera="cam-b", episode="ep-old-gone")
    assert old_kept != old_gone
    with pool.connection() as conn:
        conn.execute("UPDATE video_evidence SET stored_at = now() - interval '400 days'")
    recent = store_one(svc, episode="ep-recent")
    guard = Guard({old_kept})
    removed = svc.evidence.apply_retention(datetime.now(UTC), timedelta(days=180), guard)
    assert removed == 1
    assert svc.evidence.record(old_gone) is None
    assert not svc.evidence.path_of(old_gone).exists()
    assert svc.evidence.record(old_kept) is not None
    assert svc.evidence.read(old_kept)
    assert svc.evidence.record(recent) is not None
    # Files shared with kept rows (the same clean image) survive.
    kept = svc.evidence.record(old_kept)
    assert kept is not None
    assert svc.evidence.read(kept.files[Variant.CLEAN].sha256)


def test_without_a_guard_retention_removes_nothing(pool: ConnectionPool, tmp_path: Path) -> None:
    svc = make_service(pool, tmp_path)
    evidence_id = store_one(svc)
    with pool.connection() as conn:
        conn.execute("UPDATE video_evidence SET stored_at = now() - interval '400 days'")
    assert svc.apply_retention() == 0
    assert svc.evidence.record(evidence_id) is not None
