"""No loss, no duplicates: a database outage mid-stream, and the server killed mid-stream."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from offsite.app import OffsiteApp
from offsite.embedded import EmbeddedBroker, EmbeddedPostgres
from offsite.settings import Settings, load_settings
from tests.helpers import Publisher, stored_counts, wait_until
from tests.ingest.test_pipeline import Stream

pytestmark = pytest.mark.slow


def outage_settings(
    tmp_path: Path, pg: EmbeddedPostgres, broker: EmbeddedBroker, name: str
) -> Settings:
    """offsite on a database of its own (`pg`, which the test stops and starts), retrying
    the database at least once a second."""
    return load_settings(
        config_file=None,
        state_dir=tmp_path / "state",
        database={"url": pg.url},
        mqtt={"url": broker.url, "client_id": f"{name}-{uuid.uuid4().hex[:6]}"},
        http={"port": 0},
        ingest={"retry_max_s": 1.0},
    )


def test_database_outage_turns_into_back_pressure_not_loss(
    tmp_path: Path, broker: EmbeddedBroker
) -> None:
    # Durable: an immediate stop must not lose commits the writer has acknowledged.
    pg = EmbeddedPostgres(tmp_path / "pg", durable=True)
    pg.start()
    try:
        settings = outage_settings(tmp_path, pg, broker, "outage")
        device = f"outage-{uuid.uuid4().hex[:6]}"
        pub = Publisher(broker.port)
        with OffsiteApp(settings) as app:
            wait_until(lambda: app.readiness()["broker"], what="broker connection")
            stream = Stream(pub, device, n=1500, per=4, rate=75).start()
            wait_until(
                lambda: stored_counts(pg.url, [device])[0] > 1000, what="the stream under way"
            )
            pg.stop("immediate")
            wait_until(lambda: not app.readiness()["database"], what="readyz to go false")
            time.sleep(10)
            pg.start()
            stream.join()
            wait_until(
                lambda: stored_counts(pg.url, [device])[0] >= 1500 * 4,
                timeout=60,
                what="every acknowledged reading stored",
            )
            wait_until(lambda: app.readiness()["database"], what="readyz to recover")
            time.sleep(1)
        assert stored_counts(pg.url, [device]) == (6000, 6000)
        pub.close()
    finally:
        pg.stop()


def _start_server(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "offsite.cli", "run"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def test_sigkill_mid_stream_loses_and_duplicates_nothing(
    tmp_path: Path, broker: EmbeddedBroker, db_url: str
) -> None:
    env = {
        **os.environ,
        "OFFSITE_DATABASE__URL": db_url,
        "OFFSITE_MQTT__URL": broker.url,
        "OFFSITE_MQTT__CLIENT_ID": f"kill-{uuid.uuid4().hex[:6]}",
        "OFFSITE_HTTP__PORT": "0",
        "OFFSITE_STATE_DIR": str(tmp_path / "state"),
    }
    env.pop("OFFSITE_CONFIG", None)
    log = tmp_path / "server.log"
    device = f"kill-{uuid.uuid4().hex[:6]}"
    server = _start_server(env, log)
    try:
        wait_until(lambda: b"offsite is running" in log.read_bytes(), what="server start")
        pub = Publisher(broker.port)
        stream = Stream(pub, device, n=3000, per=3, rate=300).start()
        wait_until(lambda: stored_counts(db_url, [device])[0] > 1000, what="some readings stored")
        server.send_signal(signal.SIGKILL)
        server.wait()
        killed_at = stored_counts(db_url, [device])[0]
        time.sleep(1)
        server = _start_server(env, log)
        stream.join()
        wait_until(
            lambda: stored_counts(db_url, [device])[0] >= 9000,
            timeout=60,
            what="all readings stored",
        )
        time.sleep(1)
        assert killed_at < 9000, "the kill must land mid-stream for this test to mean anything"
        assert stored_counts(db_url, [device]) == (9000, 9000)
        pub.close()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
