"""Departments see their own, over real HTTP against `offsite run`'s app, signed in as people.

A department admin is scoped like everyone; only the platform admin sees and binds unbound
devices; another department's device and person answer 404; records name the person.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx
import psycopg

from api import people
from api.auth import create_key
from api.keys import revoke_key
from offsite.app import OffsiteApp
from subjects.credit_code import make
from tests.api.conftest import Person, sign_in
from tests.helpers import wait_until

PLANT = make("9", "1", "330100", "71610585")


def _client(app: OffsiteApp) -> httpx.Client:
    return httpx.Client(base_url=app.endpoints.http, follow_redirects=False, timeout=10)


def test_departments_see_their_own_and_the_platform_admin_binds(
    make_settings: Callable[..., Any], db: psycopg.Connection[Any], person: Person
) -> None:
    person()  # 张伟, EEB officer
    person("eebadmin", "王芳", "EEB", "admin")
    person("chenjing", "陈静", "EMB", "officer")
    person("platform", "刘洋", "BDB", "platform_admin")
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    db.execute(
        "INSERT INTO devices (device_id, first_seen, last_seen, online)"
        " VALUES ('new-1', %s, %s, true)",
        (t0, t0),
    )
    db.execute(
        "INSERT INTO readings (time, device_id, metric, value) VALUES (%s, 'new-1', 'cod', 12.5)",
        (t0,),
    )
    with (
        OffsiteApp(make_settings()) as app,
        _client(app) as eeb,
        _client(app) as admin,
        _client(app) as emb,
        _client(app) as plat,
    ):
        eeb_csrf = sign_in(eeb, "zhangwei")
        sign_in(admin, "eebadmin")
        sign_in(emb, "chenjing")
        plat_csrf = sign_in(plat, "platform")
        r = eeb.post(
            "/api/v1/subjects",
            json={"credit_code": PLANT, "name": "东港污水处理厂"},
            headers={"X-CSRF-Token": eeb_csrf},
        )
        assert r.status_code == 201, r.text

        # Unbound: only the platform admin sees it, its readings and its binding form.
        for who in (eeb, admin, emb):
            assert [d["device_id"] for d in who.get("/api/v1/devices").json()] == []
            r = who.get("/api/v1/devices/new-1/readings", params={"metric": "cod"})
            assert r.status_code == 404
        assert [d["device_id"] for d in plat.get("/api/v1/devices").json()] == ["new-1"]
        r = plat.get("/api/v1/devices/new-1/readings", params={"metric": "cod"})
        assert r.status_code == 200
        assert [p["value"] for p in r.json()["points"]] == [12.5]

        # The department's admin may not bind a new device; the platform admin binds it
        # to a subject of a department it does not belong to.
        binding = {"credit_code": PLANT, "role": "wastewater_outlet", "point": "DW001"}
        admin_csrf = admin.get("/api/v1/me").json()["csrf_token"]
        r = admin.put(
            "/api/v1/devices/new-1/binding", json=binding, headers={"X-CSRF-Token": admin_csrf}
        )
        assert r.status_code == 403
        r = plat.put(
            "/api/v1/devices/new-1/binding", json=binding, headers={"X-CSRF-Token": plat_csrf}
        )
        assert r.status_code == 200, r.text

        # Bound to an EEB subject: EEB sees it, EMB (even a key of EMB's admin) does not.
        wait_until(
            lambda: [d["device_id"] for d in eeb.get("/api/v1/devices").json()] == ["new-1"],
            what="the bound device in EEB's list",
        )
        assert [d["device_id"] for d in admin.get("/api/v1/devices").json()] == ["new-1"]
        emb_admin = {"X-API-Key": create_key(db, "EMB", "admin")}
        for headers in ({}, emb_admin):
            assert emb.get("/api/v1/devices", headers=headers).json() == []
            r = emb.get("/api/v1/devices/new-1/readings?metric=cod", headers=headers)
            assert r.status_code == 404
            assert emb.get("/api/v1/devices/new-1/binding", headers=headers).status_code == 404
            assert emb.get(f"/api/v1/subjects/{PLANT}", headers=headers).status_code == 404

        # People: colleagues are visible, another department's person answers 404.
        assert eeb.get("/api/v1/people/eebadmin").json()["name"] == "王芳"
        assert emb.get("/api/v1/people/zhangwei").status_code == 404
        assert {p["login"] for p in eeb.get("/api/v1/people").json()} == {
            "zhangwei",
            "eebadmin",
        }

        # A silence records who created it by name.
        now = datetime.now(UTC)
        r = eeb.post(
            "/api/v1/silences",
            json={
                "matcher": "subject",
                "value": PLANT,
                "starts_at": now.isoformat(),
                "ends_at": (now + timedelta(hours=1)).isoformat(),
                "reason": "检修",
            },
            headers={"X-CSRF-Token": eeb_csrf},
        )
        assert r.status_code == 201, r.text
        assert r.json()["created_by"] == "张伟 (zhangwei)"

    # The audit chain names the people, not key ids.
    actors = {row[0] for row in db.execute("SELECT DISTINCT actor FROM audit_log")}
    assert "张伟 (zhangwei)" in actors
    assert "刘洋 (platform)" in actors


def test_a_disabled_persons_open_stream_closes_within_seconds(
    make_settings: Callable[..., Any], db: psycopg.Connection[Any], person: Person
) -> None:
    person()
    person("lisi", "李四", "EEB", "viewer")
    key = create_key(db, "EEB", "viewer", "wall screen")
    key_id = db.execute("SELECT id FROM api_keys ORDER BY id DESC LIMIT 1").fetchone()
    assert key_id is not None
    settings = make_settings(auth={"stream_recheck_s": 0.5})
    with OffsiteApp(settings) as app, _client(app) as zhang, _client(app) as lisi:
        machine = _client(app)
        sign_in(zhang, "zhangwei")
        lisi_csrf = sign_in(lisi, "lisi")
        streams: dict[str, list[str]] = {}
        ended: dict[str, threading.Event] = {}

        def watch(name: str, client: httpx.Client, headers: dict[str, str]) -> None:
            lines = streams.setdefault(name, [])
            try:
                with client.stream(
                    "GET", "/api/v1/stream", headers=headers, timeout=httpx.Timeout(10, read=60)
                ) as r:
                    lines.append(f"status {r.status_code}")
                    for line in r.iter_lines():
                        lines.append(line)
            finally:
                ended[name].set()

        for name, client, headers in (
            ("zhang", zhang, {}),
            ("lisi", lisi, {}),
            ("key", machine, {"Authorization": f"Bearer {key}"}),
        ):
            ended[name] = threading.Event()
            threading.Thread(target=watch, args=(name, client, headers), daemon=True).start()
        for name in ended:
            wait_until(partial(_opened, streams, name), what=f"{name}'s stream to open")

        people.disable(db, "zhangwei")
        assert ended["zhang"].wait(10), "the disabled person's stream stayed open"
        assert "event: signed_out" in streams["zhang"]
        assert not ended["lisi"].is_set()

        r = lisi.post("/logout", data={"csrf_token": lisi_csrf})
        assert r.status_code == 303
        assert ended["lisi"].wait(10), "the signed-out session's stream stayed open"

        assert not ended["key"].is_set()
        revoke_key(db, key_id[0])
        assert ended["key"].wait(10), "the revoked key's stream stayed open"
        # Reconnecting is refused.
        assert zhang.get("/api/v1/stream").status_code == 401
        metrics = httpx.get(f"{app.endpoints.http}/metrics").text
        assert "offsite_api_streams_revoked_total 3.0" in metrics
        machine.close()


def _opened(streams: dict[str, list[str]], name: str) -> bool:
    return any(": stream of EEB" in x for x in streams.get(name, []))
