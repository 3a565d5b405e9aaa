"""/api/v1 routes of the video package: evidence (verified on every read) and cameras.

Evidence is addressed by SHA-256. The departments that own the camera's subject get the
original; a department taking part in an alert whose clues carry the evidence gets the copy
with faces blurred; anyone else is told it does not exist (404), as for any other
department's ids. When ownership is unknown, only admins get originals.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel

from alerts.visibility import evidence_shared_with
from api.auth import Caller, Viewer
from api.context import ApiContext, Ctx
from video.evidence import (
    SHA256_PATTERN,
    EvidenceCorruptError,
    EvidenceNotFoundError,
    EvidenceRecord,
    Variant,
)
from video.service import VideoService

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["video"])


class EvidenceFileOut(BaseModel):
    variant: str
    sha256: str
    size: int


class EvidenceMeta(BaseModel):
    evidence_id: str
    camera_id: str
    episode_id: str
    captured_at: datetime
    stored_at: datetime
    faces: int
    detections: list[dict[str, Any]]
    original_access: bool
    files: list[EvidenceFileOut]


class CameraOut(BaseModel):
    camera_id: str
    name: str
    source: str
    state: str
    last_seen: datetime | None
    status_changed_at: datetime | None
    detectors: list[str]
    zones: list[str]


def _service(ctx: ApiContext) -> VideoService:
    try:
        return ctx.get(VideoService)
    except LookupError:
        raise HTTPException(503, "the video pipeline is not running in this process") from None


def _owners(svc: VideoService, camera_id: str) -> frozenset[str] | None:
    return svc.ownership.owner_departments(camera_id) if svc.ownership is not None else None


def may_see_original(svc: VideoService, caller: Caller, camera_id: str) -> bool:
    owners = _owners(svc, camera_id)
    if owners is None:
        # An unbound camera belongs to no department yet: only the platform admin sees it.
        return caller.is_platform_admin
    return caller.department in owners


def _find(
    ctx: ApiContext, svc: VideoService, caller: Caller, sha256: str
) -> tuple[EvidenceRecord, Variant, bool]:
    """The record, the variant asked for, and whether the caller may see the original."""
    if not SHA256_PATTERN.match(sha256):
        raise HTTPException(422, "sha256 must be 64 lower-case hex characters")
    found = svc.evidence.find(sha256)
    if found is None:
        raise HTTPException(404, f"evidence {sha256} not found")
    record, variant = found
    original = may_see_original(svc, caller, record.camera_id)
    if not original:
        with ctx.pool.connection() as conn:
            shared = evidence_shared_with(conn, record.sha256, caller.department)
        if not shared:
            raise HTTPException(404, f"evidence {sha256} not found")
    return record, variant, original


@router.get(
    "/evidence/{sha256}",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}},
)
def get_evidence(sha256: str, ctx: Ctx, caller: Viewer, shared: bool = False) -> Response:
    """The JPEG, re-hashed on read; `X-Content-SHA256` is the hash of the bytes served.

    Callers who do not own the camera's subject get the face-blurred copy of the file asked
    for (`X-Evidence-Variant` says which); owners may ask for it with `shared=true`.
    """
    svc = _service(ctx)
    record, variant, original = _find(ctx, svc, caller, sha256)
    if shared or not original:
        variant = variant.shared
    file = record.files[variant]
    try:
        data = svc.evidence.read(file.sha256)
    except (EvidenceCorruptError, EvidenceNotFoundError) as err:
        raise HTTPException(500, f"evidence failed verification: {err}") from err
    return Response(
        content=data,
        media_type="image/jpeg",
        headers={
            "X-Content-SHA256": file.sha256,
            "X-Evidence-Id": record.sha256,
            "X-Evidence-Variant": variant.value,
            "ETag": f'"{file.sha256}"',
            "Cache-Control": "private, max-age=86400, immutable",
        },
    )


@router.get("/evidence/{sha256}/meta", response_model=EvidenceMeta)
def get_evidence_meta(sha256: str, ctx: Ctx, caller: Viewer) -> EvidenceMeta:
    """The evidence row: camera, capture and storage times, detections, the files you may get."""
    svc = _service(ctx)
    record, _, original = _find(ctx, svc, caller, sha256)
    files = [
        EvidenceFileOut(variant=f.variant.value, sha256=f.sha256, size=f.size)
        for v, f in sorted(record.files.items())
        if original or v.is_shared
    ]
    return EvidenceMeta(
        evidence_id=record.sha256,
        camera_id=record.camera_id,
        episode_id=record.episode_id,
        captured_at=record.captured_at,
        stored_at=record.stored_at,
        faces=record.faces,
        detections=record.detections,
        original_access=original,
        files=files,
    )


@router.get("/cameras", response_model=list[CameraOut])
def list_cameras(ctx: Ctx, caller: Viewer) -> list[CameraOut]:
    """Cameras of the caller's department (unbound ones for the platform admin), with state."""
    svc = _service(ctx)
    status = {s.camera_id: s for s in svc.cameras.statuses()}
    out: list[CameraOut] = []
    for cam in svc.cameras.cameras():
        owners = _owners(svc, cam.id)
        mine = caller.is_platform_admin if owners is None else caller.department in owners
        if not mine:
            continue
        st = status.get(cam.id)
        out.append(
            CameraOut(
                camera_id=cam.id,
                name=cam.name,
                source="pull" if cam.url else "mqtt",
                state=st.state.value if st else "unknown",
                last_seen=st.last_seen if st else None,
                status_changed_at=st.changed_at if st else None,
                detectors=[d.value for d in cam.detectors],
                zones=[z.name for z in cam.zones],
            )
        )
    return out
