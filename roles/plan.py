"""Roles to parts: which services the composition root starts for a set of roles.

A small site runs every role in one process. A larger one spreads them: ingest processes
in one shared subscription, an engine (rules, alerts, outbox, maintenance) with a standby,
video workers, and API processes behind a load balancer. This module only decides *what*
starts; the composition root (offsite/app.py) builds it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class Role(StrEnum):
    INGEST = "ingest"  # MQTT intake, batch writer, storage upkeep, the HJ 212 gateway
    ENGINE = "engine"  # rules, alerts, outbox delivery, maintenance
    VIDEO = "video"  # camera frames: motion, tracking, detections, evidence
    API = "api"  # the HTTP API, the workbench and /metrics, /readyz


ALL_ROLES: frozenset[Role] = frozenset(Role)

# The engine takes its readings from the ingest writer in this process (the after-commit
# sink). Ingest child processes cannot call it, so while this holds, `ingest.workers: auto`
# keeps one in-process writer whenever the engine shares the process. Set it to False once
# the engine reads the full stream on its own (then child processes serve every layout).
ENGINE_NEEDS_IN_PROCESS_READINGS = True


class RoleError(ValueError):
    """An unknown role name; the message lists the known ones."""


def parse_roles(values: Iterable[str]) -> frozenset[Role]:
    """`["ingest,engine", "api"]` -> {INGEST, ENGINE, API}; empty means every role."""
    known = {r.value: r for r in Role}
    picked: set[Role] = set()
    for value in values:
        for part in value.split(","):
            name = part.strip().lower()
            if not name:
                continue
            role = known.get(name)
            if role is None:
                raise RoleError(
                    f"unknown role {name!r}: roles are {', '.join(r.value for r in Role)}"
                    " (repeat --role or give a comma list)"
                )
            picked.add(role)
    return frozenset(picked) or ALL_ROLES


@dataclass(frozen=True, slots=True)
class Parts:
    """What this process starts."""

    roles: frozenset[Role]
    ingest: bool
    engine: bool
    video: bool
    http: bool
    # Ingest child processes (0: the MQTT intake runs in this process, as on a small site).
    ingest_workers: int
    # The ingest writer of this process hands committed readings to the engine here.
    readings_in_process: bool
    # Frames reach the video service through this process's ingest intake; otherwise ingest
    # acknowledges and skips them (a video worker elsewhere subscribes to its cameras).
    frames_in_process: bool

    def describe(self) -> str:
        names = ", ".join(r.value for r in Role if r in self.roles)
        if self.ingest_workers:
            names += f" (ingest in {self.ingest_workers} child processes)"
        return names


def resolve_workers(setting: int | Literal["auto"], engine_here: bool) -> int:
    """How many ingest processes the setting asks for (1 = the single-process path)."""
    if setting != "auto":
        return setting
    if engine_here and ENGINE_NEEDS_IN_PROCESS_READINGS:
        return 1
    return os.cpu_count() or 1


def plan(roles: frozenset[Role], workers: int | Literal["auto"]) -> Parts:
    ingest = Role.INGEST in roles
    engine = Role.ENGINE in roles
    video = Role.VIDEO in roles
    n = resolve_workers(workers, engine) if ingest else 0
    children = n if n > 1 else 0
    return Parts(
        roles=roles,
        ingest=ingest,
        engine=engine,
        video=video,
        http=Role.API in roles,
        ingest_workers=children,
        readings_in_process=ingest and engine and not children,
        frames_in_process=ingest and video and not children,
    )
