"""HJ 212 readings reach an engine in another process (ingest/relay.py).

A data logger's TCP packets reach only the gateway in the ingest process; the elected engine
reads the broker. Here `offsite run --role ingest` (gateway on) and `offsite run --role
engine` share a real Mosquitto and PostgreSQL: a breaching HJ 212 upload, over TCP and on the
MQTT hj212 channel, becomes a clue in the engine, and each reading is stored once.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from hj212.simlogger import Logger, data_packet
from offsite.embedded import EmbeddedBroker
from subjects.credit_code import check_character
from tests.helpers import wait_until

pytestmark = [
    pytest.mark.skipif(shutil.which("mosquitto") is None, reason="needs the mosquitto binary"),
    pytest.mark.slow,
]

RULE = {
    "id": "cod-high",
    "version": 1,
    "department": "EEB",
    "title": "COD high",
    "legal_basis": "test pack",
    "severity": "major",
    "credit_tiered": False,
    "selector": {"metric": "w01018", "role": "outfall"},
    "kind": "threshold",
    "op": ">=",
    "limit": 50,
}
TCP_MN = "88888880000001"
MQTT_MN = "88888880000002"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _seed(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as db:
        for n, mn in enumerate((TCP_MN, MQTT_MN)):
            first17 = f"91320500MA1G{n:05d}"
            code = first17 + check_character(first17)
            db.execute(
                "INSERT INTO subjects (credit_code, name, industry, grid)"
                " VALUES (%s, %s, 'chemicals', 'G1')",
                (code, f"排污单位 {n}"),
            )
            db.execute(
                "INSERT INTO subject_departments (credit_code, department) VALUES (%s, 'EEB')",
                (code,),
            )
            db.execute(
                "INSERT INTO device_bindings (device_id, credit_code, role)"
                " VALUES (%s, %s, 'outfall')",
                (mn, code),
            )


@pytest.fixture
def broker(own_broker: EmbeddedBroker) -> EmbeddedBroker:
    """A broker of this test's own (tests/conftest.py)."""
    return own_broker


def _start(
    root: Path, name: str, config: Path, role: str, workers: str
) -> tuple[subprocess.Popen[bytes], Path]:
    out = root / f"{name}.log"
    env = {
        **os.environ,
        "OFFSITE_CONFIG": str(config),
        "OFFSITE_STATE_DIR": str(root / f"state-{name}"),
        "OFFSITE_LOG_LEVEL": "INFO",
        "OFFSITE_MQTT__CLIENT_ID": f"offsite-{name}",
        "OFFSITE_INGEST__WORKERS": workers,
    }
    with out.open("ab") as f:
        popen = subprocess.Popen(
            [sys.executable, "-m", "offsite.cli", "run", "--role", role],
            stdout=f, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    return popen, out


def _http(popen: subprocess.Popen[bytes], out: Path) -> str:
    def started() -> str | None:
        log = out.read_text(errors="replace")
        if popen.poll() is not None:
            raise AssertionError(f"exited {popen.returncode}: {log[-3000:]}")
        m = re.search(r"HTTP +(http://\S+)", log)
        return m.group(1) if m else None

    return wait_until(started, timeout=90, interval=0.2, what=f"{out.stem} up")


def _active(http: str) -> bool:
    try:
        with urllib.request.urlopen(http + "/metrics", timeout=2) as r:
            return re.search(r"^offsite_engine_active 1", r.read().decode(), re.M) is not None
    except OSError:
        return False


# 1: the MQTT intake in the ingest process; 2: in two child processes, each with a decoder.
@pytest.mark.parametrize("workers", ["1", "2"])
def test_hj212_readings_reach_an_engine_in_another_process(
    tmp_path: Path, db_url: str, broker: EmbeddedBroker, workers: str
) -> None:
    _seed(db_url)
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "cod.yaml").write_text(yaml.safe_dump({"rules": [RULE]}), encoding="utf-8")
    hj212_port = _free_port()
    config = tmp_path / "offsite.yaml"
    settings = {
        "database": {"url": db_url},
        "mqtt": {"url": broker.url},
        "http": {"port": 0},
        "auth": {"first_run_admin": False},
        "rules": {"directory": str(rules)},
        "video": {"enabled": False},
        "hj212": {"enabled": True, "port": hj212_port},
    }
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    procs = [_start(tmp_path, "engine", config, "engine", workers)]
    try:
        engine_http = _http(*procs[0])
        wait_until(lambda: _active(engine_http), timeout=30, what="the engine holds the lease")
        procs.append(_start(tmp_path, "ingest", config, "ingest", workers))
        _http(*procs[1])
        if workers != "1":
            wait_until(
                lambda: (
                    procs[1][1].read_text(errors="replace").count("subscribed to") >= int(workers)
                ),
                timeout=30,
                what="every ingest child subscribed",
            )
        now = datetime.now(UTC).replace(second=0, microsecond=0)

        async def upload() -> None:
            logger = Logger("127.0.0.1", hj212_port)
            await logger.connect()
            qn, frame = data_packet(TCP_MN, "2011", now, {"w01018": 88.5})
            assert await logger.send_and_wait(qn, frame, timeout=30)
            await logger.close()

        asyncio.run(upload())
        _, packet = data_packet(MQTT_MN, "2011", now, {"w01018": 77.0}, flag=4)
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        pub.publish(f"offsite/v1/devices/{MQTT_MN}/hj212", packet, qos=1).wait_for_publish(10)
        pub.disconnect()
        pub.loop_stop()

        def clues() -> set[str] | None:
            with psycopg.connect(db_url) as db:
                rows = db.execute(
                    "SELECT unnest(device_ids) FROM clues WHERE rule_id = 'cod-high'"
                ).fetchall()
            got = {str(d) for (d,) in rows}
            return got if len(got) == 2 else None

        found = wait_until(clues, timeout=30, what="a clue for each logger in the engine")
        assert found == {TCP_MN, MQTT_MN}
        with psycopg.connect(db_url) as db:
            stored = db.execute(
                "SELECT device_id, count(*) FROM readings WHERE metric = 'w01018'"
                " GROUP BY device_id ORDER BY device_id"
            ).fetchall()
        assert stored == [(TCP_MN, 1), (MQTT_MN, 1)]  # relayed, not stored again
    finally:
        for popen, _ in procs:
            if popen.poll() is None:
                popen.send_signal(signal.SIGTERM)
        for popen, _ in procs:
            try:
                popen.wait(20)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()
