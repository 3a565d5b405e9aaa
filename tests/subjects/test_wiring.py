"""The composition root runs the library: HTTP routes answer and the directory is provided."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import psycopg

from api.auth import create_key
from offsite.app import OffsiteApp
from subjects.credit_code import make
from subjects.directory import SubjectDirectory
from tests.helpers import wait_until


def test_running_app_serves_subjects(
    make_settings: Callable[..., Any], db: psycopg.Connection[Any]
) -> None:
    code = make("9", "1", "330100", "71610585")
    headers = {"Authorization": f"Bearer {create_key(db, 'EEB', 'officer')}"}
    platform = {"Authorization": f"Bearer {create_key(db, 'EEB', 'platform_admin')}"}
    with OffsiteApp(make_settings()) as app:
        base = f"http://127.0.0.1:{app.http_port}/api/v1"
        r = httpx.post(f"{base}/subjects", json={"credit_code": code, "name": "p"}, headers=headers)
        assert r.status_code == 201, r.text
        r = httpx.put(
            f"{base}/devices/st-1/binding",
            json={"credit_code": code, "role": "stack"},
            headers=platform,
        )
        assert r.status_code == 200, r.text
        assert app.api_context is not None
        directory = app.api_context.get(SubjectDirectory)
        ctx = directory.context("st-1")
        assert ctx is not None
        assert ctx.credit_code == code
        # A binding written by another instance (here: plain SQL) arrives by NOTIFY.
        db.execute(
            "INSERT INTO device_bindings (device_id, credit_code, role)"
            " VALUES ('st-2', %s, 'tank')",
            (code,),
        )
        wait_until(lambda: directory.context("st-2"), timeout=10, what="NOTIFY in the app")
