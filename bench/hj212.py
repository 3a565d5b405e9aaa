"""HJ 212 gateway benchmark: 1,000 logger connections, replies after commit, in one run.

    python bench/hj212.py [--runs N] [--database-url URL] [--connections N] [--packets N]
                          [--procs N] [--workers N]

Starts a broker, a database and `offsite run` (the gateway on a free port), then logger
simulators in separate processes: every connection sends its packets one after another,
each waiting for the 9014 reply that the gateway sends only after the rows are committed.
Prints packets/s and readings/s over the whole run, the reply latency p50/p99 seen by the
loggers, the simulators' own packet rate with no server (the client-side limit), and checks
that every reading was stored exactly once. Where the CPU went is printed per party (the
gateway, the simulators, PostgreSQL) and for the whole box, which other work may share:
the sum per packet says what two free cores would carry. With `--runs 3` each figure is
also given as the median of the runs.
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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import infrastructure, offsite_server, rss_mb, scrape
from hj212.loop import run
from hj212.packet import decode_packet
from hj212.simlogger import Logger, data_packet
from offsite.embedded import free_port

VALUES: dict[str, float | tuple[float, str]] = {
    "w01018": 42.0,
    "w21003": (1.5, "N"),
    "w21011": (0.3, "C"),
}

# The devices' readings stored, and how many differ (by device, metric and time).
STORED = (
    "SELECT count(*), count(DISTINCT (device_id, metric, time)) FROM readings"
    " WHERE device_id = ANY(%s)"
)


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
        cpu0 = time.process_time()
        resent = await asyncio.gather(
            *(one(lg, p, lat) for lg, p in zip(loggers, plan, strict=True))
        )
        t1 = time.perf_counter()
        cpu[0] = time.process_time() - cpu0
        await asyncio.gather(*(lg.close() for lg in loggers))
        return t0, t1, lat, sum(resent)

    cpu = [0.0]
    t0, t1, lat, resent = run(main())
    out.put(("done", t0, t1, lat, resent, cpu[0]))


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU time of a process (all its threads) so far; with `children`, also
    that of its children that have ended (PostgreSQL backends that closed)."""
    f = _stat(pid)
    ticks = int(f[11]) + int(f[12]) + ((int(f[13]) + int(f[14])) if children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def kernel_seconds(pid: int) -> float:
    """System (kernel) CPU time of a process so far: its sockets' share of the work."""
    return int(_stat(pid)[12]) / os.sysconf("SC_CLK_TCK")


def postgres_cpu(postmaster: int | None) -> float:
    """CPU seconds of the PostgreSQL server so far (postmaster and every backend)."""
    if postmaster is None:
        return 0.0
    total = 0.0
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int(_stat(int(d.name))[1]) == postmaster:
                    total += cpu_seconds(int(d.name))
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
    return total + cpu_seconds(postmaster, children=True)


def find_postmaster(db_url: str) -> int | None:
    """The postmaster's pid when the database runs on this machine (else None)."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        try:  # while the backend is still there: its parent is the postmaster
            return int(_stat(int(row[0]))[1])
        except OSError:
            return None


def box_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, over all cores."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = f[3] + f[4]
    total = sum(f[:8])
    return (total - idle) / os.sysconf("SC_CLK_TCK"), total / os.sysconf("SC_CLK_TCK")


def client_limit(n: int) -> float:
    """Packets/s one simulator process builds and parses (encode + decode a reply)."""
    start = datetime.now(UTC)
    t0 = time.perf_counter()
    for k in range(n):
        _, frame = data_packet("BENCH", "2011", start + timedelta(minutes=k), VALUES)
        decode_packet(frame)
    return n / (time.perf_counter() - t0)


@dataclass
class Run:
    packets_s: float
    readings_s: float
    p50_ms: float
    p99_ms: float
    server_us: float
    sim_us: float
    pg_us: float
    other_cores: float
    load: float
    ok: bool


def run_once(args: argparse.Namespace) -> Run:
    per_packet = len(VALUES)
    total = args.connections * args.packets
    with tempfile.TemporaryDirectory(prefix="bench-hj212-") as tmp:
        work = Path(tmp)
        with infrastructure(work, args.database_url) as infra:
            port = free_port()
            env = {
                "OFFSITE_HJ212__PORT": str(port),
                "OFFSITE_HJ212__HOST": "127.0.0.1",
                **({"OFFSITE_HJ212__WORKERS": str(args.workers)} if args.workers else {}),
            }
            postmaster = find_postmaster(infra.db_url)
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
                results: list[Any] = []
                connected = 0
                registration = 0.0
                while connected < len(devices):
                    msg = q.get(timeout=600)
                    connected += msg[1]
                    registration = max(registration, msg[2])
                served = [server.process.pid, *gateway_children(server.process.pid)]
                cpu0 = sum(cpu_seconds(pid) for pid in served)
                sys0 = sum(kernel_seconds(pid) for pid in served)
                pg0 = postgres_cpu(postmaster)
                box0 = box_cpu()
                go.set()  # every process starts its timed run at once
                while len(results) < len(procs):
                    results.append(q.get(timeout=600))
                server_cpu = sum(cpu_seconds(pid) for pid in served) - cpu0
                server_sys = sum(kernel_seconds(pid) for pid in served) - sys0
                pg_cpu = postgres_cpu(postmaster) - pg0
                box1 = box_cpu()
                for p in procs:
                    p.join(30)
                metrics = scrape(server.metrics_url)
                rss = sum(rss_mb(pid) for pid in served)
                with psycopg.connect(infra.db_url) as conn:
                    row = conn.execute(STORED, (devices,)).fetchone()
    assert row is not None
    t0 = min(r[1] for r in results)
    t1 = max(r[2] for r in results)
    lat = sorted(x for r in results for x in r[3])
    resent = sum(r[4] for r in results)
    sim_cpu = sum(r[5] for r in results)
    elapsed = t1 - t0
    q99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    ours = server_cpu + sim_cpu + pg_cpu
    # Cores' worth of CPU that went to other work on the machine during the run.
    other = max(0.0, (box1[0] - box0[0]) - ours) / elapsed
    r = Run(
        packets_s=total / elapsed,
        readings_s=total * per_packet / elapsed,
        p50_ms=statistics.median(lat) * 1000,
        p99_ms=q99 * 1000,
        server_us=server_cpu / total * 1e6,
        sim_us=sim_cpu / total * 1e6,
        pg_us=pg_cpu / total * 1e6,
        other_cores=other,
        load=os.getloadavg()[0],
        ok=False,
    )
    print(
        f"connections: {connected} concurrent, {args.packets} packets each, stop-and-wait;"
        f" first contact (self-registration of {connected} MNs) took {registration:.1f}s"
    )
    print(
        f"gateway: {r.packets_s:,.0f} packets/s, {r.readings_s:,.0f}"
        f" readings/s ({total:,} packets in {elapsed:.1f}s, replies after commit)"
    )
    print(
        f"reply latency: p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms"
        " (send to 9014 reply, at the logger)"
    )
    want = (total + connected) * per_packet  # with the first-contact packets
    print(f"stored: {row[0]:,} rows, {row[1]:,} distinct, expected {want:,}; resent {resent}")
    print(
        f"server: {len(served)} process(es), replies"
        f" {metrics.get('offsite_hj212_replies_total', 0):,.0f}, RSS {rss:.0f} MB"
    )
    print(
        f"CPU per packet: gateway {r.server_us:.0f} µs"
        f" (of it {server_sys / total * 1e6:.0f} µs in the kernel), simulators {r.sim_us:.0f} µs,"
        f" PostgreSQL {r.pg_us:.0f} µs; sum {r.server_us + r.sim_us + r.pg_us:.0f} µs"
        f" (= {total / ours * (os.cpu_count() or 1):,.0f} packets/s if the"
        f" {os.cpu_count()} cores were ours alone)"
    )
    print(
        f"machine: {os.cpu_count()} cores, other work used {other:.2f} cores during the run,"
        f" load average {r.load:.1f} at the end"
    )
    r.ok = row == (want, want)
    return r


def gateway_children(pid: int) -> list[int]:
    """Gateway worker processes `offsite run` started (hj212.workers > 1)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int(_stat(int(d.name))[1]) == pid:
                    out.append(int(d.name))
            except (OSError, IndexError, ValueError):
                continue
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1, help="runs; figures also as their median")
    ap.add_argument("--database-url", help="an existing server (else an embedded PostgreSQL)")
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--packets", type=int, default=30, help="packets per connection")
    ap.add_argument("--procs", type=int, default=2, help="simulator processes")
    ap.add_argument("--workers", type=int, default=0, help="hj212.workers (default: the setting)")
    args = ap.parse_args()
    print(f"client limit: {client_limit(5000):,.0f} packets/s per simulator process (no server)")
    runs = []
    for k in range(args.runs):
        if args.runs > 1:
            print(f"--- run {k + 1} of {args.runs}, load average {os.getloadavg()[0]:.1f}")
        runs.append(run_once(args))
    if args.runs > 1:
        m = {f: statistics.median(getattr(r, f) for r in runs) for f in Run.__dataclass_fields__}
        print(
            f"=== median of {args.runs} runs: {m['packets_s']:,.0f} packets/s,"
            f" {m['readings_s']:,.0f} readings/s, p50 {m['p50_ms']:.1f} ms,"
            f" p99 {m['p99_ms']:.1f} ms; CPU per packet gateway {m['server_us']:.0f} µs,"
            f" simulators {m['sim_us']:.0f} µs, PostgreSQL {m['pg_us']:.0f} µs;"
            f" other work {m['other_cores']:.2f} cores, load average {m['load']:.1f}"
        )
    bad = sum(not r.ok for r in runs)
    if bad:
        print(f"STORED-ONCE CHECK FAILED in {bad} run(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
