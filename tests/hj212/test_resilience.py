"""A database outage mid-stream: unanswered packets are resent by the loggers, stored once."""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hj212.simlogger import Logger, data_packet
from offsite.app import OffsiteApp
from offsite.embedded import EmbeddedBroker, EmbeddedPostgres
from tests.helpers import stored_counts, wait_until
from tests.ingest.test_resilience import outage_settings

pytestmark = pytest.mark.slow

LOGGERS = 5
PACKETS = 80  # per logger, one a step, each resent until answered


def test_database_outage_means_no_reply_then_resend_and_stored_once(
    tmp_path: Path, broker: EmbeddedBroker
) -> None:
    pg = EmbeddedPostgres(tmp_path / "pg", durable=True)
    pg.start()
    devices = [f"OUT{uuid.uuid4().hex[:10].upper()}" for _ in range(LOGGERS)]
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=3)
    resent = 0
    progress = [0] * LOGGERS
    outage = threading.Event()
    try:
        settings = outage_settings(tmp_path, pg, broker, "hj-outage")
        with OffsiteApp(settings) as app:
            assert app.hj212 is not None
            port = app.hj212.port

            async def one(i: int) -> None:
                nonlocal resent
                lg = Logger("127.0.0.1", port)
                await lg.connect()
                for k in range(PACKETS):
                    at = start + timedelta(minutes=k)
                    qn, p = data_packet(devices[i], "2011", at, {"w01018": k, "w21003": 1.0})
                    # Past the halfway mark, wait for the outage so some packets meet it.
                    if k == PACKETS // 2:
                        await asyncio.to_thread(outage.wait, 60)
                    while not await lg.send_and_wait(qn, p, timeout=2.0):
                        resent += 1
                    progress[i] = k + 1
                await lg.close()

            async def main() -> None:
                await asyncio.gather(*(one(i) for i in range(LOGGERS)))

            runner = threading.Thread(target=asyncio.run, args=(main(),))
            runner.start()
            wait_until(lambda: min(progress) >= PACKETS // 2, timeout=60, what="half sent")
            pg.stop("immediate")
            outage.set()
            wait_until(lambda: not app.readiness()["database"], what="readyz to go false")
            # While the database is away no packet is answered (the loggers are blocked);
            # a reply already on its way when the commit failed has landed by the first resend.
            wait_until(lambda: resent >= 1, timeout=30, what="a logger resending")
            stalled = list(progress)
            wait_until(lambda: resent >= 2 * LOGGERS, timeout=30, what="loggers resending")
            assert progress == stalled
            pg.start()
            runner.join(120)
            assert not runner.is_alive(), "loggers did not finish after the database returned"
        assert resent >= LOGGERS
        assert stored_counts(pg.url, devices) == (LOGGERS * PACKETS * 2, LOGGERS * PACKETS * 2)
    finally:
        pg.stop()
