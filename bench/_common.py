"""Shared pieces of the benchmarks: servers, a fast publisher process, metric scraping."""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from offsite.embedded import EmbeddedBroker, EmbeddedPostgres, free_port


def publish_worker(
    port: int,
    topics_payloads: Sequence[tuple[str, bytes]],
    rate: float | None,
    qos: int,
    result: mp.Queue,  # type: ignore[type-arg]
    stamp: bool = False,
) -> None:
    """Publish every (topic, payload) at `rate` msg/s (None: as fast as possible)."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"bench-pub-{uuid.uuid4().hex[:6]}",
        protocol=mqtt.MQTTv5,
    )
    # paho slows down badly with a large bounded window (bookkeeping per ack); unbounded is
    # fastest, and publish() itself refuses past 65,535 outstanding, which we wait out.
    client.max_inflight_messages_set(0)
    client.max_queued_messages_set(0)
    acked = [0]

    def on_publish(*_: object) -> None:
        acked[0] += 1

    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    start = time.monotonic()
    for i, (topic, template) in enumerate(topics_payloads):
        # A stamped payload carries the publish time, so commit lag = publish-to-commit.
        payload = (
            template.replace(b"@TS@", str(int(time.time() * 1000)).encode()) if stamp else template
        )
        while True:
            info = client.publish(topic, payload, qos=qos)
            if info.rc == mqtt.MQTT_ERR_SUCCESS:
                break
            time.sleep(0.001)  # in-flight window full: wait for acks
        if rate is not None:
            delay = start + (i + 1) / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    sent_at = time.monotonic()
    deadline = sent_at + 120
    while qos > 0 and acked[0] < len(topics_payloads) and time.monotonic() < deadline:
        time.sleep(0.01)
    client.disconnect()
    client.loop_stop()
    result.put((len(topics_payloads), acked[0] if qos else len(topics_payloads), sent_at - start))


def start_publisher(
    port: int,
    items: Sequence[tuple[str, bytes]],
    rate: float | None = None,
    qos: int = 1,
    stamp: bool = False,
) -> tuple[mp.Process, mp.Queue]:  # type: ignore[type-arg]
    ctx = mp.get_context("fork")
    q: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    p = ctx.Process(target=publish_worker, args=(port, items, rate, qos, q, stamp), daemon=True)
    p.start()
    return p, q


# The benchmarks' rule: a pm25 reading above 500 (pm25_stream's breaches are 900).
PM25_RULE = """\
id: bench-pm25-high
version: 1
department: EEB
title: PM2.5 reading above 500
legal_basis: bench
severity: major
selector: {metric: pm25}
kind: threshold
op: ">"
limit: 500
"""


def pm25_stream(n: int, prefix: str, devices: int) -> tuple[list[tuple[str, bytes]], int]:
    """`n` pm25 readings for start_publisher (stamped), over `devices` devices named
    `prefix`-0000 on: 1% breach (900 against 12.5), spread so that a device's next reading is
    normal again and it breaches at most once in a run. The items and how many breach."""
    breaching = [(i % devices + i // devices) % 100 == 7 for i in range(n)]
    items = []
    for i in range(n):
        value = "900.0" if breaching[i] else "12.5"
        body = f'{{"ts": @TS@, "values": {{"pm25": {value}}}}}'.encode()
        items.append((f"offsite/v1/devices/{prefix}-{i % devices:04d}/telemetry", body))
    return items, sum(breaching)


def rate_main(doc: str, run: Callable[[float, float], None], rate: float) -> int:
    """A benchmark's command line: --rate (messages a second) and --seconds, then `run`."""
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--rate", type=float, default=rate)
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()
    run(args.rate, args.seconds)
    return 0


def scrape(url: str) -> dict[str, float]:
    """Prometheus text to {"name{labels}": value}."""
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def histogram_quantile(
    before: dict[str, float], after: dict[str, float], name: str, q: float
) -> float:
    """Quantile of the observations made between two scrapes, interpolated in the bucket."""
    pat = re.compile(re.escape(name) + r'_bucket\{le="([^"]+)"\}')
    buckets = []
    for key, value in after.items():
        m = pat.fullmatch(key)
        if m:
            le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
            buckets.append((le, value - before.get(key, 0.0)))
    buckets.sort()
    total = buckets[-1][1] if buckets else 0
    if total <= 0:
        return float("nan")
    rank = q * total
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == float("inf"):
                return prev_le
            span = count - prev_count
            frac = (rank - prev_count) / span if span else 1.0
            return prev_le + (le - prev_le) * frac
        prev_le, prev_count = le, count
    return prev_le


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def start_server(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "offsite.cli", "run"],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@dataclass(frozen=True)
class Infra:
    """A broker and a fresh database of the benchmark's own."""

    broker: EmbeddedBroker
    db_url: str


@contextmanager
def infrastructure(work: Path, database_url: str | None = None) -> Iterator[Infra]:
    """Mosquitto with the project's config and a new database (on an embedded PostgreSQL
    unless `database_url` names a server); both removed afterwards."""
    broker = EmbeddedBroker(work / "broker", port=free_port())
    broker.start()
    pg = None
    url = database_url
    if not url:
        pg = EmbeddedPostgres(work / "pg", durable=True)
        pg.start()
        url = pg.url
    admin = psycopg.connect(url, autocommit=True)
    dbname = f"bench_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{dbname}"')
    try:
        yield Infra(broker, psycopg.conninfo.make_conninfo(url, dbname=dbname))
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        admin.close()
        broker.stop()
        if pg is not None:
            pg.stop()


@dataclass(frozen=True)
class Server:
    """`offsite run` in a child process, as operators run it."""

    process: subprocess.Popen[bytes]
    metrics_url: str
    http_port: int


@contextmanager
def offsite_server(
    work: Path,
    infra: Infra,
    client_id: str,
    env: dict[str, str] | None = None,
    ready_timeout: float = 90.0,
) -> Iterator[Server]:
    """Start the server on the benchmark's broker and database; wait until it serves."""
    http_port = free_port()
    log = work / "server.log"
    process = start_server(
        {
            "OFFSITE_DATABASE__URL": infra.db_url,
            "OFFSITE_MQTT__URL": infra.broker.url,
            "OFFSITE_MQTT__CLIENT_ID": client_id,
            "OFFSITE_HTTP__PORT": str(http_port),
            "OFFSITE_STATE_DIR": str(work / "state"),
            "OFFSITE_LOG_LEVEL": "WARNING",
            **(env or {}),
        },
        log,
    )
    metrics_url = f"http://127.0.0.1:{http_port}/metrics"
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            try:
                scrape(metrics_url)
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    print(log.read_text())
                    raise
                time.sleep(0.2)
        yield Server(process, metrics_url, http_port)
    finally:
        process.terminate()
        process.wait(30)
