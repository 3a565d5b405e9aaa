"""Ingest benchmark: raw broker and COPY limits, then offsite end to end, in one run.

    python bench/ingest.py [--database-url URL] [--single N] [--batched N] [--quick]

Prints the machine's raw limits (a paho subscriber's receive rate from Mosquitto, binary
COPY into a readings-shaped table), offsite's sustained rate for single-reading and
20-reading messages at QoS 1 with lost/duplicated counts, publish->commit latency p50/p99 at
a steady 2,000 msg/s, and the server's RSS. Broker, database, publisher and server share
this machine, as they would on a small site server.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (
    Server,
    histogram_quantile,
    infrastructure,
    offsite_server,
    rss_mb,
    scrape,
    start_publisher,
)

DEVICES = 1000


def raw_receive_rate(port: int, n: int) -> float:
    """Messages/s a bare paho subscriber receives at QoS 1 from this broker."""
    got = [0]
    first = [0.0]
    last = [0.0]
    done = threading.Event()

    def on_message(*_: object) -> None:
        now = time.perf_counter()
        if got[0] == 0:
            first[0] = now
        got[0] += 1
        last[0] = now
        if got[0] >= n:
            done.set()

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-raw-sub", protocol=mqtt.MQTTv5)
    sub.on_message = on_message
    sub.connect("127.0.0.1", port)
    sub.subscribe("bench/raw/#", qos=1)
    sub.loop_start()
    time.sleep(0.5)
    payload = b'{"ts": 1764150000000, "values": {"pm25": 35.2}}'
    proc, _ = start_publisher(port, [(f"bench/raw/d{i % DEVICES}", payload) for i in range(n)])
    done.wait(300)
    proc.join(30)
    sub.disconnect()
    sub.loop_stop()
    return got[0] / (last[0] - first[0]) if last[0] > first[0] else float("nan")


def raw_copy_rate(url: str, rows: int, batch: int = 5000) -> float:
    """Rows/s of binary COPY into a table shaped like readings, committed per batch."""
    base = datetime.now(UTC).timestamp()
    with psycopg.connect(url) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_copy")
        conn.execute(
            "CREATE TABLE bench_copy (time timestamptz NOT NULL, device_id text NOT NULL,"
            " metric text NOT NULL, value float8 NOT NULL, UNIQUE (device_id, metric, time))"
        )
        conn.commit()
        start = time.perf_counter()
        for b in range(0, rows, batch):
            with (
                conn.cursor() as cur,
                cur.copy(
                    "COPY bench_copy (time, device_id, metric, value) FROM STDIN (FORMAT BINARY)"
                ) as copy,
            ):
                copy.set_types(["timestamptz", "text", "text", "float8"])
                for i in range(b, min(rows, b + batch)):
                    copy.write_row(
                        (
                            datetime.fromtimestamp(base - i / 1000, UTC),
                            f"d{i % DEVICES}",
                            "v",
                            float(i),
                        )
                    )
            conn.commit()
        elapsed = time.perf_counter() - start
        conn.execute("DROP TABLE bench_copy")
        conn.commit()
    return rows / elapsed


class Sampler:
    """Samples the server's RSS every 0.25 s."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            self.samples.append(rss_mb(self.pid))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def written(metrics_url: str) -> float:
    return scrape(metrics_url).get("offsite_ingest_readings_written_total", 0.0)


def run_ingest(
    broker_port: int,
    metrics_url: str,
    db_url: str,
    tag: str,
    messages: int,
    per: int,
    rate: float | None = None,
) -> dict[str, float]:
    """Publish `messages` of `per` readings; time from first to last commit."""
    base_ms = int(time.time() * 1000) - 3_600_000
    items = []
    for i in range(messages):
        device = f"{tag}-{i % DEVICES:04d}"
        ts = base_ms + i // DEVICES * per
        if per == 1:
            body = f'{{"ts": {ts}, "values": {{"pm25": {i % 500}.5}}}}'
        else:
            body = (
                "["
                + ", ".join(
                    f'{{"ts": {ts + k}, "values": {{"pm25": {(i + k) % 500}.5}}}}'
                    for k in range(per)
                )
                + "]"
            )
        items.append((f"offsite/v1/devices/{device}/telemetry", body.encode()))
    target = messages * per
    before = written(metrics_url)
    proc, result = start_publisher(broker_port, items, rate=rate)
    t_first = None
    t_last = time.perf_counter()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        now_written = written(metrics_url) - before
        now = time.perf_counter()
        if now_written > 0 and t_first is None:
            t_first = now
        if now_written >= target:
            t_last = now
            break
        time.sleep(0.25)  # scraping /metrics costs the server CPU; do not poll hard
    proc.join(60)
    sent, acked, _pub_s = result.get(timeout=10)
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT (device_id, metric, time)) FROM readings"
            " WHERE device_id LIKE %s",
            (f"{tag}-%",),
        ).fetchone()
    assert row is not None
    total, distinct = int(row[0]), int(row[1])
    elapsed = t_last - (t_first or t_last)
    return {
        "readings_per_s": distinct / elapsed if elapsed > 0 else float("nan"),
        "messages_per_s": distinct / per / elapsed if elapsed > 0 else float("nan"),
        "published": sent,
        "acked_by_broker": acked,
        "lost": target - distinct,
        "duplicated": total - distinct,
    }


def run_latency(
    broker_port: int, metrics_url: str, rate: float, seconds: float
) -> tuple[float, float]:
    n = int(rate * seconds)
    items = [
        (
            f"offsite/v1/devices/lat-{i % DEVICES:04d}/telemetry",
            b'{"ts": @TS@, "values": {"pm25": 12.5}}',
        )
        for i in range(n)
    ]
    before = scrape(metrics_url)
    target = before.get("offsite_ingest_readings_written_total", 0.0) + n
    proc, _ = start_publisher(broker_port, items, rate=rate, stamp=True)
    proc.join(seconds + 120)
    deadline = time.monotonic() + 60
    while written(metrics_url) < target and time.monotonic() < deadline:
        time.sleep(0.1)
    after = scrape(metrics_url)
    name = "offsite_ingest_lag_seconds"
    return (
        histogram_quantile(before, after, name, 0.5),
        histogram_quantile(before, after, name, 0.99),
    )


def end_to_end(
    args: argparse.Namespace, port: int, srv: Server, db_url: str, recv: float, copy: float
) -> None:
    """Offsite's own figures, printed beside the raw limits measured just before."""
    metrics_url, pid = srv.metrics_url, srv.process.pid
    sampler = Sampler(pid)
    rss_start = rss_mb(pid)
    print("\n== offsite end to end (QoS 1, ack after commit)")
    single = run_ingest(port, metrics_url, db_url, "s", args.single, 1)
    print(
        f"single-reading messages: {single['messages_per_s']:,.0f} msg/s "
        f"({single['messages_per_s'] / recv:.2f} x raw receive); "
        f"lost {single['lost']:.0f}, duplicated {single['duplicated']:.0f} "
        f"of {args.single:,} (broker acked {single['acked_by_broker']:,.0f})"
    )
    batched = run_ingest(port, metrics_url, db_url, "b", args.batched, 20)
    print(
        f"20-reading messages: {batched['readings_per_s']:,.0f} readings/s "
        f"({batched['readings_per_s'] / copy:.2f} x raw COPY); "
        f"lost {batched['lost']:.0f}, duplicated {batched['duplicated']:.0f} "
        f"of {args.batched * 20:,}"
    )
    p50, p99 = run_latency(port, metrics_url, 2000, args.latency_seconds)
    print(
        f"publish->commit latency at 2,000 msg/s for {args.latency_seconds:.0f}s: "
        f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms (histogram-interpolated)"
    )
    sampler.stop()
    rss = [x for x in sampler.samples if x == x]
    print(f"server RSS: start {rss_start:.0f} MB, peak {max(rss):.0f} MB, end {rss[-1]:.0f} MB")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--database-url", help="PostgreSQL to use (default: an embedded one)")
    ap.add_argument("--single", type=int, default=300_000, help="single-reading messages")
    ap.add_argument("--batched", type=int, default=75_000, help="20-reading messages")
    ap.add_argument("--raw", type=int, default=300_000, help="messages for the raw receive test")
    ap.add_argument("--latency-seconds", type=float, default=20.0)
    ap.add_argument("--quick", action="store_true", help="a small run to check the script")
    args = ap.parse_args()
    if args.quick:
        args.single, args.batched, args.raw, args.latency_seconds = 20_000, 5_000, 20_000, 5

    work = Path(tempfile.mkdtemp(prefix="offsite-bench-"))
    try:
        with infrastructure(work, args.database_url) as infra:
            broker, db_url = infra.broker, infra.db_url
            print("== raw limits of this machine")
            recv = raw_receive_rate(broker.port, args.raw)
            print(f"paho subscriber receive rate (QoS 1, from Mosquitto): {recv:,.0f} msg/s")
            copy = raw_copy_rate(db_url, max(200_000, args.single))
            print(f"binary COPY into a readings-shaped table, 5k-row commits: {copy:,.0f} rows/s")
            with offsite_server(work, infra, "offsite-bench") as srv:
                end_to_end(args, broker.port, srv, db_url, recv, copy)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
