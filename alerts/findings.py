"""Findings of a task: each participating department records text and photos (hashed)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from alerts.errors import NotFoundError, Refusal
from alerts.lifecycle import TransitionRefused
from alerts.records import Changes, TaskRow, TaskStatus, fetch_tasks
from core.principal import Principal

MAX_PHOTO_BYTES = 15 * 1024 * 1024
MAX_PHOTOS = 10
_MAGIC = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG": "image/png", b"RIFF": "image/webp"}


@dataclass(frozen=True, slots=True)
class PhotoUpload:
    filename: str
    content: bytes


def photo_type(photo: PhotoUpload) -> str:
    """The photo's media type read from its bytes; refuses what is not JPEG, PNG or WebP."""
    for magic, kind in _MAGIC.items():
        if photo.content.startswith(magic):
            return kind
    raise TransitionRefused(
        Refusal.PHOTO_TYPE, f"photo {photo.filename!r} is not a JPEG, PNG or WebP image"
    )


def record_finding(
    conn: psycopg.Connection[Any],
    task_id: int,
    actor: Principal,
    text: str,
    photos: Sequence[PhotoUpload],
    now: datetime,
    changes: Changes,
) -> tuple[TaskRow, int, list[str]]:
    """Add the actor's department's finding to an open task; returns the task, the finding
    id and the photos' SHA-256. Call inside the caller's transaction."""
    tasks = fetch_tasks(conn, "id = %s", (task_id,), lock=True)
    if not tasks or actor.department not in tasks[0].departments:
        raise NotFoundError(f"task {task_id} not found")
    task = tasks[0]
    if task.status is TaskStatus.DONE:
        raise TransitionRefused(Refusal.TASK_DONE, f"task {task.id} is done; findings are closed")
    if not text.strip() and not photos:
        raise TransitionRefused(Refusal.FINDING_EMPTY, "a finding needs a text or a photo")
    if len(photos) > MAX_PHOTOS:
        raise TransitionRefused(Refusal.TOO_MANY_PHOTOS, f"at most {MAX_PHOTOS} photos per finding")
    hashes = []
    for photo in photos:
        if len(photo.content) > MAX_PHOTO_BYTES:
            raise TransitionRefused(
                Refusal.PHOTO_TOO_LARGE, f"photo {photo.filename!r} is over {MAX_PHOTO_BYTES} bytes"
            )
        kind = photo_type(photo)
        digest = hashlib.sha256(photo.content).hexdigest()
        conn.execute(
            "INSERT INTO finding_photos (sha256, content_type, size_bytes, content,"
            " uploaded_at, uploaded_by) VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (sha256) DO NOTHING",
            (digest, kind, len(photo.content), photo.content, now, actor.name),
        )
        hashes.append(digest)
    row = conn.execute(
        "INSERT INTO task_findings (task_id, department, author, text, created_at)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (task.id, actor.department, actor.name, text.strip(), now),
    ).fetchone()
    assert row is not None
    finding_id = int(row[0])
    for i, digest in enumerate(hashes):
        conn.execute(
            "INSERT INTO task_finding_photos (finding_id, position, sha256) VALUES (%s, %s, %s)",
            (finding_id, i, digest),
        )
    if task.status is TaskStatus.PLANNED:
        conn.execute(
            "UPDATE tasks SET status = 'in_progress', started_at = %s, updated_at = %s"
            " WHERE id = %s",
            (now, now, task.id),
        )
    else:
        conn.execute("UPDATE tasks SET updated_at = %s WHERE id = %s", (now, task.id))
    (task,) = fetch_tasks(conn, "id = %s", (task.id,))
    changes.task_event(task, "finding")
    changes.record(
        actor.name,
        "task",
        task.id,
        "task.finding",
        {"finding_id": finding_id, "department": actor.department, "text": text.strip(),
         "photos": hashes},
    )  # fmt: skip
    return task, finding_id, hashes


def verified_photo(content: bytes, sha256: str) -> bytes:
    """The stored bytes, checked against their hash before they are served as evidence."""
    if hashlib.sha256(content).hexdigest() != sha256:
        raise ValueError(f"finding photo {sha256} failed verification")
    return content
