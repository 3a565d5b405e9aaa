"""`offsite hj212 register`, and split packets over MQTT acknowledged once whole."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from hj212.packet import encode
from hj212.registry import password_hash
from hj212.simlogger import data_time
from ingest.topics import hj212_topic
from offsite.app import OffsiteApp
from offsite.cli import main
from offsite.embedded import EmbeddedBroker
from tests.helpers import Publisher, wait_until


def test_register_sets_and_changes_a_password(
    db_url: str, db: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OFFSITE_DATABASE__URL", db_url)
    mn = f"CLI{uuid.uuid4().hex[:8].upper()}"
    assert main(["hj212", "register", mn, "--password", "first"]) == 0
    assert main(["hj212", "register", mn, "--password", "second"]) == 0
    row = db.execute(
        "SELECT password_sha256, registered_by FROM hj212_loggers WHERE mn = %s", (mn,)
    ).fetchone()
    assert row == (password_hash(mn, "second"), "cli")
    assert db.execute("SELECT kind FROM devices WHERE device_id = %s", (mn,)).fetchone() == (
        "hj212",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bad/mn", "--password", "x"], "must match"),
        (["GOODMN", "--password", "a;b"], "without ';' or '&'"),
    ],
)
def test_register_names_what_is_wrong(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["hj212", "register", *args]) == 2
    assert message in capsys.readouterr().err


@pytest.fixture
def app(make_settings: Callable[..., Any]) -> Iterator[OffsiteApp]:
    with OffsiteApp(make_settings()) as running:
        yield running


def test_split_packet_over_mqtt_is_stored_and_every_piece_acknowledged(
    app: OffsiteApp, broker: EmbeddedBroker, db: psycopg.Connection[Any]
) -> None:
    mn = f"MQS{uuid.uuid4().hex[:8].upper()}"
    dt = data_time(datetime.now(UTC).replace(minute=0, second=0, microsecond=0))
    head = f"QN=20260101000000002;ST=32;CN=2061;PW=123456;MN={mn};Flag=7;PNUM=2;"
    pieces = [
        encode(f"{head}PNO=1;CP=&&DataTime={dt};w01018-Avg=40,w01018-Flag=N&&"),
        encode(f"{head}PNO=2;CP=&&DataTime={dt};w21003-Avg=2,w21003-Flag=M&&"),
    ]
    pub = Publisher(broker.port)
    try:
        wait_until(lambda: app.readiness()["broker"], what="broker connection")
        pub.publish(hj212_topic(mn), pieces[0])
        pub.publish(hj212_topic(mn), pieces[1])
        pub.wait_acked(2)
    finally:
        pub.close()
    got = wait_until(
        lambda: db.execute(
            "SELECT metric, value, flag FROM readings WHERE device_id = %s ORDER BY metric", (mn,)
        ).fetchall(),
        what="rows",
    )
    assert got == [("w01018.avg_hour", 40.0, "N"), ("w21003.avg_hour", 2.0, "M")]
    # The first piece was held unacknowledged until the whole packet committed; now neither
    # waits (the broker's PUBACK to our publisher says nothing about offsite's own ack).
    assert app.ingest is not None
    wait_until(lambda: app.ingest.intake._held == {}, what="held pieces acknowledged")  # type: ignore[union-attr]
