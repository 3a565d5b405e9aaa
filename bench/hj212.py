"""HJ 212 gateway benchmark: 1,000 logger connections, replies after commit, in one run.

    python bench/hj212.py [--database-url URL] [--connections N] [--packets N] [--procs N]

Starts a broker, a database and `offsite run` (the gateway on a free port), then logger
simulators in separate processes: every connection sends its packets one after another,
each waiting for the 9014 reply that the gateway sends only after the rows are committed.
Prints packets/s and readings/s over the whole run, the reply latency p50/p99 seen by the
loggers, the simulators' own packet rate with no server (the client-side limit), and checks
that every reading was stored exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import infrastructure, offsite_server, rss_mb, scrape
from hj212.packet import decode_packet
from hj212.simlogger import Logger, data_packet
from offsite.embedded import free_port

VALUES = {"w01018": 42.0, "w21003": (1.5, "N"), "w21011": (0.3, "C")}


def _packets(devices: list[str], n: int, start: datetime) -> list[list[tuple[str, bytes]]]:
    return [
        [data_packet(d, "2011", start + timedelta(minutes=k), VALUES) for k in range(n)]
        for d in devices
    ]


def worker(
    port: int,
    devices: list[str],
    n: int,
    start: datetime,
    out: mp.Queue,  # type: ignore[type-arg]
    go: Any,
) -> None:
    plan = _packets(devices, n, start)

    async def one(lg: Logger, packets: list[tuple[str, bytes]], lat: list[float]) -> int:
        resent = 0
        for qn, frame in packets:
            sent = time.perf_counter()
            while not await lg.send_and_wait(qn, frame, timeout=30):
                resent += 1
            lat.append(lg.replies[qn] - sent)
        return resent

    async def main() -> tuple[float, float, list[float], int]:
        loggers = [Logger("127.0.0.1", port, trusting=True) for _ in devices]
        await asyncio.gather(*(lg.connect() for lg in loggers))
        # First contact registers each MN (a committed row each): done before the clock runs.
        first = [data_packet(d, "2011", start - timedelta(minutes=1), VALUES) for d in devices]
        t_reg = time.perf_counter()
        await asyncio.gather(*(one(lg, [p], []) for lg, p in zip(loggers, first, strict=True)))
        out.put(("connected", len(loggers), time.perf_counter() - t_reg))
        go.wait()
        lat: list[float] = []
        t0 = time.perf_counter()
        resent = await asyncio.gather(
            *(one(lg, p, lat) for lg, p in zip(loggers, plan, strict=True))
        )
        t1 = time.perf_counter()
        await asyncio.gather(*(lg.close() for lg in loggers))
        return t0, t1, lat, sum(resent)

    t0, t1, lat, resent = asyncio.run(main())
    out.put(("done", t0, t1, lat, resent))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def client_limit(n: int) -> float:
    """Packets/s one simulator process builds and parses (encode + decode a reply)."""
    start = datetime.now(UTC)
    t0 = time.perf_counter()
    for k in range(n):
        _, frame = data_packet("BENCH", "2011", start + timedelta(minutes=k), VALUES)
        decode_packet(frame)
    return n / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url", help="an existing server (else an embedded PostgreSQL)")
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--packets", type=int, default=30, help="packets per connection")
    ap.add_argument("--procs", type=int, default=2, help="simulator processes")
    args = ap.parse_args()
    per_packet = len(VALUES)
    total = args.connections * args.packets
    print(f"client limit: {client_limit(5000):,.0f} packets/s per simulator process (no server)")
    with tempfile.TemporaryDirectory(prefix="bench-hj212-") as tmp:
        work = Path(tmp)
        with infrastructure(work, args.database_url) as infra:
            port = free_port()
            env = {"OFFSITE_HJ212__PORT": str(port), "OFFSITE_HJ212__HOST": "127.0.0.1"}
            with offsite_server(work, infra, f"bench-{uuid.uuid4().hex[:6]}", env) as server:
                devices = [f"BENCH{uuid.uuid4().hex[:10].upper()}" for _ in range(args.connections)]
                start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=2)
                ctx = mp.get_context("fork")
                q: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
                go = ctx.Event()
                shares = [devices[i :: args.procs] for i in range(args.procs)]
                procs = [
                    ctx.Process(
                        target=worker, args=(port, s, args.packets, start, q, go), daemon=True
                    )
                    for s in shares
                ]
                for p in procs:
                    p.start()
                results = []
                connected = 0
                registration = 0.0
                while connected < len(devices):
                    msg = q.get(timeout=600)
                    connected += msg[1]
                    registration = max(registration, msg[2])
                cpu0 = cpu_seconds(server.process.pid)
                go.set()  # every process starts its timed run at once
                while len(results) < len(procs):
                    results.append(q.get(timeout=600))
                server_cpu = cpu_seconds(server.process.pid) - cpu0
                for p in procs:
                    p.join(30)
                metrics = scrape(server.metrics_url)
                rss = rss_mb(server.process.pid)
                with psycopg.connect(infra.db_url) as conn:
                    row = conn.execute(
                        "SELECT count(*), count(DISTINCT (device_id, metric, time)) FROM readings"
                        " WHERE device_id = ANY(%s)",
                        (devices,),
                    ).fetchone()
        assert row is not None
        t0 = min(r[1] for r in results)
        t1 = max(r[2] for r in results)
        lat = sorted(x for r in results for x in r[3])
        resent = sum(r[4] for r in results)
        elapsed = t1 - t0
        q99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        print(
            f"connections: {connected} concurrent, {args.packets} packets each, stop-and-wait;"
            f" first contact (self-registration of {connected} MNs) took {registration:.1f}s"
        )
        print(
            f"gateway: {total / elapsed:,.0f} packets/s, {total * per_packet / elapsed:,.0f}"
            f" readings/s ({total:,} packets in {elapsed:.1f}s, replies after commit)"
        )
        print(
            f"reply latency: p50 {statistics.median(lat) * 1000:.1f} ms,"
            f" p99 {q99 * 1000:.1f} ms (send to 9014 reply, at the logger)"
        )
        want = (total + connected) * per_packet  # with the first-contact packets
        print(f"stored: {row[0]:,} rows, {row[1]:,} distinct, expected {want:,}; resent {resent}")
        print(
            f"server: replies {metrics.get('offsite_hj212_replies_total', 0):,.0f},"
            f" RSS {rss:.0f} MB, CPU {server_cpu / total * 1e6:.0f} µs per packet"
            f" (= {total / server_cpu:,.0f} packets/s per fully available core)"
        )
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end")
        return 0 if row == (want, want) else 1


if __name__ == "__main__":
    raise SystemExit(main())
