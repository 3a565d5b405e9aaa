"""Publish -> webhook delivered, end to end: `offsite run` at 1,000 msg/s, 1% of readings breaching.

Run: .venv/bin/python bench/alerts.py [--rate 1000] [--seconds 20]
Starts an embedded PostgreSQL and Mosquitto, runs the server as a subprocess with one
threshold rule and one signed webhook route pointing at a receiver in this process, and
publishes QoS 1 telemetry stamped with the publish time. Each breaching reading is on a
device of its own subject, so it opens one alert and one notification. Latency per
notification = its arrival at the receiver - the publish time of the breaching reading (the
clue's started_at, carried in the payload). Also prints the server's own histogram of
outbox commit -> delivered, i.e. the in-process share.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alerts.notify.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from bench._common import (
    PM25_RULE,
    histogram_quantile,
    infrastructure,
    offsite_server,
    pm25_stream,
    rate_main,
    scrape,
    start_publisher,
)
from offsite.embedded import free_port

DEVICES = 1000
SECRET = "bench-secret"


class Receiver:
    """Records (arrival time, payload, signature ok) for every POST."""

    def __init__(self) -> None:
        self.got: list[tuple[float, dict[str, Any], bool]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                at = time.time()
                ok = verify_signature(
                    SECRET,
                    self.headers.get(TIMESTAMP_HEADER, ""),
                    body,
                    self.headers.get(SIGNATURE_HEADER, ""),
                )
                with receiver.lock:
                    receiver.got.append((at, json.loads(body), ok))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def count(self) -> int:
        with self.lock:
            return len(self.got)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def unlabel(scraped: dict[str, float], name: str, channel: str) -> dict[str, float]:
    """The buckets of one channel's series, keyed as an unlabelled histogram's."""
    prefix = f'{name}_bucket{{channel="{channel}",'
    return {
        f"{name}_bucket{{" + key[len(prefix) :]: value
        for key, value in scraped.items()
        if key.startswith(prefix)
    }


def seed_subjects(db_url: str) -> None:
    """Each device watches a subject of its own, supervised by EEB."""
    with psycopg.connect(db_url, autocommit=True) as conn, conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO subjects (credit_code, name, grid) VALUES (%s, %s, 'G-bench')",
            [(f"9132050000BENCH{d:03d}", f"bench subject {d}") for d in range(DEVICES)],
        )
        cur.executemany(
            "INSERT INTO subject_departments (credit_code, department) VALUES (%s, 'EEB')",
            [(f"9132050000BENCH{d:03d}",) for d in range(DEVICES)],
        )
        cur.executemany(
            "INSERT INTO device_bindings (device_id, credit_code, role)"
            " VALUES (%s, %s, 'air_station')",
            [(f"ab-{d:04d}", f"9132050000BENCH{d:03d}") for d in range(DEVICES)],
        )


def run(rate: float, seconds: float) -> None:
    work = Path(tempfile.mkdtemp(prefix="offsite-bench-alerts-"))
    rules_dir = work / "rules"
    rules_dir.mkdir()
    (rules_dir / "bench.yaml").write_text(PM25_RULE, encoding="utf-8")
    receiver = Receiver()
    route = {
        "name": "bench",
        "kind": "webhook",
        "url": f"http://127.0.0.1:{receiver.port}/hook",
        "secret": SECRET,
        "min_severity": "warning",
    }
    try:
        with (
            infrastructure(work) as infra,
            offsite_server(
                work,
                infra,
                "offsite-bench-alerts",
                {
                    "OFFSITE_RULES__DIRECTORY": str(rules_dir),
                    "OFFSITE_ALERTS__ROUTES": json.dumps([route]),
                },
            ) as srv,
        ):
            broker, db_url, metrics_url = infra.broker, infra.db_url, srv.metrics_url
            seed_subjects(db_url)
            time.sleep(2.0)  # the subject directory picks the bindings up through NOTIFY
            n = int(rate * seconds)
            # A device breaches at most once in a run: every breach opens its own alert and
            # its own notification.
            items, breaches = pm25_stream(n, "ab", DEVICES)
            before = scrape(metrics_url)
            started = time.monotonic()
            proc, _ = start_publisher(broker.port, items, rate=rate, stamp=True)
            proc.join(seconds + 120)
            publish_s = time.monotonic() - started
            deadline = time.monotonic() + 60
            while receiver.count() < breaches and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1.0)
            after = scrape(metrics_url)
            with receiver.lock:
                got = list(receiver.got)
            latencies = []
            for at, doc, _ok in got:
                clue = doc["clues"][0]
                published = datetime.fromisoformat(clue["started_at"].replace("Z", "+00:00"))
                latencies.append(at - published.timestamp())
            signed = sum(ok for _, _, ok in got)
            print(
                f"== publish -> webhook delivered at {rate:,.0f} msg/s for {seconds:.0f} s "
                f"(QoS 1, publishing took {publish_s:.1f} s; {breaches} breaching readings = "
                f"1% of {n:,})"
            )
            print(
                f"notifications received: {len(got)} of {breaches} expected, "
                f"{signed} with a valid signature"
            )
            print(
                f"publish -> webhook delivered: p50 {pct(latencies, 0.5) * 1000:.0f} ms, "
                f"p99 {pct(latencies, 0.99) * 1000:.0f} ms, "
                f"max {max(latencies or [0]) * 1000:.0f} ms, "
                f"mean {statistics.fmean(latencies or [0]) * 1000:.0f} ms"
            )
            name = "offsite_alerts_notification_delay_seconds"
            b, a = unlabel(before, name, "bench"), unlabel(after, name, "bench")
            print(
                "in process, outbox commit -> delivered (server histogram, interpolated): "
                f"p50 {histogram_quantile(b, a, name, 0.5) * 1000:.1f} ms, "
                f"p99 {histogram_quantile(b, a, name, 0.99) * 1000:.1f} ms"
            )
            clue = "offsite_rules_clue_latency_seconds"
            print(
                "for comparison, publish -> clue committed (rules histogram): "
                f"p50 {histogram_quantile(before, after, clue, 0.5) * 1000:.0f} ms, "
                f"p99 {histogram_quantile(before, after, clue, 0.99) * 1000:.0f} ms"
            )
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    return rate_main(__doc__ or "", run, 1000.0)


if __name__ == "__main__":
    raise SystemExit(main())
