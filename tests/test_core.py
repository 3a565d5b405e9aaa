"""core: one principal type for every package, and the offset check written once."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from typing import get_type_hints

import pytest

from alerts import lifecycle
from api import auth
from core.clock import NAIVE, aware
from core.principal import SYSTEM, Principal, PrincipalKind, Role
from subjects import repository


def test_every_package_names_the_same_principal() -> None:
    assert auth.Caller is Principal
    assert get_type_hints(lifecycle.decide)["actor"] is Principal
    assert repository.Actor is Principal


def test_records_name_people_and_keys_as_before() -> None:
    person = Principal.person(3, "张伟", "zhangwei", "EEB", Role.OFFICER, 9, "t")
    assert (person.name, person.kind, person.user_id, person.key_id) == (
        "张伟 (zhangwei)",
        PrincipalKind.PERSON,
        3,
        None,
    )
    key = Principal.key(7, "scada", "EEB", Role.VIEWER)
    assert (key.name, key.key_id, key.user_id) == ("key:7 scada", 7, None)
    assert Principal.key(8, "", "EEB", Role.VIEWER).name == "key:8"


@pytest.mark.parametrize(
    ("role", "admin", "platform", "scope"),
    [
        (Role.VIEWER, False, False, "EEB"),
        (Role.OFFICER, False, False, "EEB"),
        (Role.ADMIN, True, False, "EEB"),
        (Role.PLATFORM_ADMIN, True, True, None),
    ],
)
def test_role_decides_admin_platform_and_scope(
    role: Role, admin: bool, platform: bool, scope: str | None
) -> None:
    p = Principal("x", "EEB", role)
    assert (p.is_admin, p.is_platform_admin, p.scope, p.is_system) == (
        admin,
        platform,
        scope,
        False,
    )


def test_the_system_is_no_department() -> None:
    assert SYSTEM.is_system
    assert (SYSTEM.department, SYSTEM.name) == ("", "system")


def test_aware_refuses_a_time_without_offset() -> None:
    def refuse(name: str, why: str) -> Exception:
        return ValueError(f"{name}: {why}")

    at = datetime(2026, 11, 26, 8, tzinfo=UTC)
    assert aware(at, "since", refuse) is at
    assert aware(None, "since", refuse) is None
    with pytest.raises(ValueError, match=f"since: {NAIVE}"):
        aware(at.replace(tzinfo=None), "since", refuse)


def test_a_zone_name_is_checked_once_for_every_settings_file() -> None:
    from pydantic import BaseModel, ValidationError

    from core.clock import ZoneName

    class Shown(BaseModel):
        timezone: ZoneName = "Asia/Shanghai"

    assert Shown(timezone="Europe/Berlin").timezone == "Europe/Berlin"
    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Olympus'"):
        Shown(timezone="Mars/Olympus")


def test_a_started_process_freezes_its_start_up_objects_and_collects_less_often() -> None:
    # In a process of its own: the settings are process-wide.
    code = (
        "import gc; from core.runtime import GC_THRESHOLDS, settle_after_start;"
        "before = gc.get_threshold(); settle_after_start();"
        "print(before != GC_THRESHOLDS, gc.get_threshold() == GC_THRESHOLDS,"
        " gc.get_freeze_count() > 1000)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)  # fmt: skip
    assert out.stdout.split() == ["True", "True", "True"], out
