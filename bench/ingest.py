"""Ingest benchmark: raw limits, offsite with 1 and N ingest processes, a Node-RED flow.

    python bench/ingest.py --database-url URL [--nodered DIR] [--runs 3] [--workers N]
                           [--single 200000] [--batched 40000] [--connections 50] [--quick]

One run prints, for single-reading and 20-reading messages at QoS 1:
  * raw limits: a bare paho subscriber's receive rate from Mosquitto, binary COPY rows/s;
  * offsite (`offsite run --role ingest`) with ingest.workers = 1 and = N, and N again with
    `mqtt.protocol: "3.1.1"` (which once saved paho's MQTT 5 properties decoding);
  * the Node-RED peer flow (DIR is its folder, copied to a scratch directory and installed
    there with `npm ci`; skipped, with the reason, when Node.js or DIR is missing);
each with the broker-acked rate (what the publishers got PUBACKs for, per second) and the
stored rate (readings in the table, per second, load start to last row), lost and
duplicated counts, and the CPU time the system (all its processes) spent a message. The
load comes from bench/loadgen.py (`mosquitto_pub -l` per connection). Every figure is the
median of `--runs`; ratios use the medians. Broker, database, publishers and the subscriber
share this machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import paho.mqtt.client as mqtt
import psutil
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import loadgen
from bench._common import Infra, infrastructure, start_server
from offsite.embedded import free_port

SHAPES = (("single", 1), ("20-reading", 20))


@dataclass(frozen=True, slots=True)
class Figure:
    acked_per_s: float  # broker PUBACKs per second (messages)
    stored_per_s: float  # readings stored per second
    lost: int
    duplicated: int
    cpu_us_per_msg: float  # CPU time of the system under test (all its processes) a message
    # The rest of the box, a message: the broker, the publishers (mosquitto_pub and the grep
    # counting its acks), every PostgreSQL process, and the whole machine (all of it).
    broker_us_per_msg: float
    publishers_us_per_msg: float
    postgres_us_per_msg: float
    machine_us_per_msg: float


# -- raw limits ----------------------------------------------------------------------------


def raw_receive_rate(port: int, work: Path, messages: int, connections: int) -> float:
    """Messages/s a bare paho subscriber (QoS 1, auto-ack) receives from the same load."""
    got = [0]
    last = [0.0]
    done = threading.Event()

    def on_message(*_: object) -> None:
        got[0] += 1
        if got[0] >= messages:
            last[0] = time.perf_counter()
            done.set()

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-raw-sub", protocol=mqtt.MQTTv5)
    sub.on_message = on_message
    sub.connect("127.0.0.1", port)
    sub.subscribe("bench/raw/#", qos=1)
    sub.loop_start()
    time.sleep(0.5)
    jobs = loadgen.write_jobs(
        work / "raw", "raw", connections, messages, 1, 0, topic="bench/raw/{device}"
    )
    start = time.perf_counter()
    loadgen.run(port, jobs)
    done.wait(120)
    sub.disconnect()
    sub.loop_stop()
    shutil.rmtree(work / "raw", ignore_errors=True)
    return got[0] / ((last[0] or time.perf_counter()) - start)


def raw_copy_rate(url: str, rows: int, batch: int = 5000) -> float:
    """Rows/s of binary COPY into a table shaped like readings (its columns, flag included,
    and its unique key), committed per batch."""
    base = datetime.now(UTC).timestamp()
    with psycopg.connect(url) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_copy")
        conn.execute(
            "CREATE TABLE bench_copy (time timestamptz NOT NULL, device_id text NOT NULL,"
            " metric text NOT NULL, value float8 NOT NULL, flag text NOT NULL DEFAULT 'N',"
            " UNIQUE (device_id, metric, time))"
        )
        conn.commit()
        start = time.perf_counter()
        for b in range(0, rows, batch):
            with (
                conn.cursor() as cur,
                cur.copy(
                    "COPY bench_copy (time, device_id, metric, value, flag)"
                    " FROM STDIN (FORMAT BINARY)"
                ) as copy,
            ):
                copy.set_types(["timestamptz", "text", "text", "float8", "text"])
                for i in range(b, min(rows, b + batch)):
                    t = datetime.fromtimestamp(base - i / 1000, UTC)
                    copy.write_row((t, f"d{i % 1000}", "v", i, "N"))
            conn.commit()
        elapsed = time.perf_counter() - start
        conn.execute("DROP TABLE bench_copy")
        conn.commit()
    return rows / elapsed


# -- systems under test --------------------------------------------------------------------


def _url(conninfo: str) -> str:
    """postgresql://user[:password]@host:port/db: the form the Node-RED peer parses too."""
    i = psycopg.conninfo.conninfo_to_dict(conninfo)
    auth = quote(str(i.get("user", "postgres")), safe="")
    if i.get("password"):
        auth += ":" + quote(str(i["password"]), safe="")
    host = i.get("host", "127.0.0.1")
    return f"postgresql://{auth}@{host}:{i.get('port', 5432)}/{i['dbname']}"


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    admin = psycopg.connect(admin_url, autocommit=True)
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _url(psycopg.conninfo.make_conninfo(admin_url, dbname=name))
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            print(log.read_text(errors="replace")[-3000:])
            raise RuntimeError(f"{url} did not become ready")
        time.sleep(0.3)


@contextmanager
def offsite(
    work: Path, infra: Infra, workers: int, protocol: str = "5"
) -> Iterator[psutil.Process]:
    """`offsite run --role ingest` with `workers` ingest processes, ready (all connected)."""
    port = free_port()
    log = work / f"offsite-{workers}.log"
    proc = start_server(
        {
            "OFFSITE_DATABASE__URL": infra.db_url,
            "OFFSITE_MQTT__URL": infra.broker.url,
            "OFFSITE_MQTT__CLIENT_ID": f"bench-{uuid.uuid4().hex[:6]}",
            "OFFSITE_HTTP__PORT": str(port),
            "OFFSITE_STATE_DIR": str(work / "state"),
            "OFFSITE_LOG_LEVEL": "WARNING",
            "OFFSITE_ROLES": "ingest",
            "OFFSITE_INGEST__WORKERS": str(workers),
            "OFFSITE_MQTT__PROTOCOL": protocol,
        },
        log,
    )
    try:
        _wait_ready(f"http://127.0.0.1:{port}/readyz", proc, log, 120)
        yield psutil.Process(proc.pid)
    finally:
        proc.terminate()
        proc.wait(60)


def install_nodered(source: Path, scratch: Path) -> Path | str:
    """A runnable copy of the peer flow, or the reason there is none."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "Node.js (node, npm) is not on PATH"
    if not (source / "run-peer").is_file():
        return f"no run-peer in {source}"
    target = scratch / "nodered"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("userdir"), symlinks=True)
    if not (target / "node_modules" / "node-red").is_dir():
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=target,
                           capture_output=True, text=True, check=False)  # fmt: skip
        if r.returncode != 0:
            return f"npm ci failed: {r.stderr.strip()[-300:]}"
    return target


@contextmanager
def nodered(peer: Path, work: Path, infra: Infra) -> Iterator[psutil.Process]:
    port = free_port()
    log = work / "nodered.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(peer / "run-peer")],
            env={
                **os.environ,
                "OFFSITE_DATABASE__URL": infra.db_url,
                "OFFSITE_MQTT__URL": infra.broker.url,
                "OFFSITE_HTTP__PORT": str(port),
                "PEER_MQTT_CLIENT_ID": f"peer-{uuid.uuid4().hex[:6]}",
                "PEER_LOG_LEVEL": "warn",
                "PEER_NODERED_USERDIR": str(work / "nr-userdir"),
            },
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_ready(f"http://127.0.0.1:{port}/readyz", proc, log, 120)
        yield psutil.Process(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)


# -- one measurement -----------------------------------------------------------------------


def _count(conn: psycopg.Connection[tuple[int, int]], devices: list[str]) -> tuple[int, int]:
    row = conn.execute(
        "SELECT count(*), count(DISTINCT (device_id, metric, time)) FROM readings"
        " WHERE device_id = ANY(%s)",
        (devices,),
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _newest(conn: psycopg.Connection[Any], devices: list[str]) -> list[datetime | None]:
    """Each device's newest stored reading: one index probe a device, so polling it every
    quarter second costs the database nothing next to the load being measured (a count over
    the stored rows, polled, took most of a core away from the system under test)."""
    rows = conn.execute(
        "SELECT (SELECT max(r.time) FROM readings r WHERE r.device_id = u.d AND r.metric = 'pm25')"
        " FROM unnest(%s::text[]) WITH ORDINALITY AS u(d, i) ORDER BY u.i",
        (devices,),
    ).fetchall()
    return [r[0] for r in rows]


def _cpu(processes: Iterable[psutil.Process]) -> float:
    """User + system CPU time of these processes so far (one that is gone counts nothing)."""
    total = 0.0
    for p in processes:
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


def cpu_seconds(root: psutil.Process) -> float:
    """A process and all its descendants."""
    return _cpu([root, *root.children(recursive=True)])


def _postgres_seconds() -> float:
    return _cpu(p for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres")


def _box() -> tuple[float, float, float]:
    """(publishers, postgres, machine) CPU seconds so far."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    machine = psutil.cpu_times()
    return kids.ru_utime + kids.ru_stime, _postgres_seconds(), machine.user + machine.system


def measure(
    port: int,
    db_url: str,
    work: Path,
    messages: int,
    per: int,
    connections: int,
    system: psutil.Process,
    broker: psutil.Process,
) -> Figure:
    """Publish `messages` of `per` readings; stored rate = readings / (load start -> last row)."""
    tag = f"b{uuid.uuid4().hex[:6]}"
    base = int(time.time() * 1000) - 3_600_000
    jobs = loadgen.write_jobs(work / tag, tag, connections, messages, per, base)
    devices = [j.topic.split("/")[3] for j in jobs]
    # Each connection's last reading: the load is done once every one of them is stored.
    last = [
        datetime.fromtimestamp((base + (j.messages - 1) * per + per - 1) / 1000, UTC) for j in jobs
    ]
    result: list[loadgen.LoadResult] = []
    sender = threading.Thread(target=lambda: result.append(loadgen.run(port, jobs)))
    start = time.perf_counter()
    cpu_before, broker_before, box_before = cpu_seconds(system), cpu_seconds(broker), _box()
    sender.start()
    target = messages * per
    stored_at: float | None = None
    with psycopg.connect(db_url, autocommit=True) as conn:
        seen: list[datetime | None] = []
        stable_since = start
        while True:
            time.sleep(0.25)
            now_seen = _newest(conn, devices)
            now = time.perf_counter()
            if now_seen == last:
                stored_at = now
                break
            if now_seen != seen:
                seen, stable_since, stored_at = now_seen, now, now
            elif not sender.is_alive() and now - stable_since > 5:
                break  # nothing more is coming: the rest is lost
        total, distinct = _count(conn, devices)
        # Several ingest processes may commit a connection's last message before an
        # earlier one: count until the stragglers are in (or stop coming).
        stable_since, last_total = time.perf_counter(), total
        while distinct < target:
            time.sleep(0.25)
            total, distinct = _count(conn, devices)
            now = time.perf_counter()
            if total != last_total:
                last_total, stable_since, stored_at = total, now, now
            elif now - stable_since > 5:
                break
    sender.join()
    cpu = cpu_seconds(system) - cpu_before
    broker_cpu = cpu_seconds(broker) - broker_before
    pubs, pg, machine = (after - before for after, before in zip(_box(), box_before, strict=True))
    shutil.rmtree(work / tag, ignore_errors=True)
    load = result[0]
    elapsed = (stored_at or time.perf_counter()) - start
    return Figure(
        acked_per_s=load.acked_per_s,
        stored_per_s=distinct / elapsed,
        lost=load.acked * per - distinct,
        duplicated=total - distinct,
        cpu_us_per_msg=cpu / max(1, distinct // per) * 1e6,
        broker_us_per_msg=broker_cpu / max(1, distinct // per) * 1e6,
        publishers_us_per_msg=pubs / max(1, distinct // per) * 1e6,
        postgres_us_per_msg=pg / max(1, distinct // per) * 1e6,
        machine_us_per_msg=machine / max(1, distinct // per) * 1e6,
    )


# -- the report ----------------------------------------------------------------------------


@dataclass
class Results:
    raw_receive: list[float]
    raw_copy: list[float]
    systems: dict[str, dict[str, list[Figure]]]


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def print_summary(r: Results, skipped: str | None) -> None:
    recv, copy = med(r.raw_receive), med(r.raw_copy)
    print(f"\n== medians of {len(r.raw_receive)} runs (load average {os.getloadavg()[0]:.2f})")
    print(f"raw: bare paho subscriber {recv:,.0f} msg/s; binary COPY {copy:,.0f} rows/s")
    nr = r.systems.get("node-red", {})
    for shape, per in SHAPES:
        print(f"-- {shape} messages ({per} reading{'s' if per > 1 else ''} each)")
        for name, shapes in r.systems.items():
            figs = shapes.get(shape, [])
            if not figs:
                continue
            stored = med([f.stored_per_s for f in figs])
            acked = med([f.acked_per_s for f in figs])
            line = (
                f"  {name:<18} stored {stored:>9,.0f} readings/s ({stored / per:>8,.0f} msg/s),"
                f" broker-acked {acked:>8,.0f} msg/s, lost {max(f.lost for f in figs)},"
                f" duplicated {max(f.duplicated for f in figs)},"
                f" CPU {med([f.cpu_us_per_msg for f in figs]):,.0f} us/msg"
                f" (broker {med([f.broker_us_per_msg for f in figs]):,.0f},"
                f" publishers {med([f.publishers_us_per_msg for f in figs]):,.0f},"
                f" postgres {med([f.postgres_us_per_msg for f in figs]):,.0f},"
                f" machine {med([f.machine_us_per_msg for f in figs]):,.0f})"
            )
            if per == 1:
                line += f"; {stored / recv:.2f} x bare paho"
            else:
                line += f"; {stored / copy:.2f} x raw COPY"
            nr_figs = nr.get(shape, [])
            if name != "node-red" and nr_figs:
                line += f", {stored / med([f.stored_per_s for f in nr_figs]):.2f} x Node-RED"
            print(line)
    if skipped:
        print(f"Node-RED flow skipped: {skipped}")
    print(
        "targets: single >= 1.5 x Node-RED and >= 0.9 x bare paho;"
        " 20-reading >= 2 x Node-RED and >= 0.6 x raw COPY"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--database-url", help="PostgreSQL server to use (default: an embedded one)")
    ap.add_argument("--nodered", type=Path, help="folder of the Node-RED peer flow")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="N ingest processes")
    ap.add_argument("--single", type=int, default=200_000, help="single-reading messages")
    ap.add_argument("--batched", type=int, default=40_000, help="20-reading messages")
    ap.add_argument("--connections", type=int, default=50, help="publishing connections")
    ap.add_argument(
        "--only", help="comma list of systems: offsite-1,offsite-N,offsite-N-mqtt311,node-red"
    )
    ap.add_argument("--quick", action="store_true", help="a small run to check the script")
    args = ap.parse_args()
    if args.quick:
        args.single, args.batched, args.runs = 20_000, 3_000, 1
    # SIGTERM unwinds like Ctrl-C, so the servers, the broker and the databases go too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = Path(tempfile.mkdtemp(prefix="offsite-bench-"))
    skipped: str | None = None
    try:
        peer: Path | None = None
        if args.nodered is None:
            skipped = "no --nodered folder given"
        else:
            installed = install_nodered(args.nodered, work)
            if isinstance(installed, str):
                skipped = installed
            else:
                peer = installed
        with infrastructure(work, args.database_url) as infra:
            admin = args.database_url or infra.db_url
            systems: dict[str, Callable[[Infra], AbstractContextManager[psutil.Process]]] = {
                "offsite-1": lambda i: offsite(work, i, 1),
                f"offsite-{args.workers}": lambda i: offsite(work, i, args.workers),
                # The same processes on MQTT 3.1.1: it shows whether MQTT 5 still costs more
                # (ingest/mqttclient.py decodes a PUBLISH without properties itself).
                f"offsite-{args.workers}-mqtt311": lambda i: offsite(
                    work, i, args.workers, "3.1.1"
                ),
            }
            if peer is not None:
                systems["node-red"] = lambda i: nodered(peer, work, i)
            if args.only:
                wanted = {w.replace("N", str(args.workers)) for w in args.only.split(",")}
                systems = {k: v for k, v in systems.items() if k in wanted}
            res = Results([], [], {name: {} for name in systems})
            assert infra.broker._proc is not None
            broker = psutil.Process(infra.broker._proc.pid)
            for run in range(1, args.runs + 1):
                print(f"== run {run} (load average {os.getloadavg()[0]:.2f})", flush=True)
                recv = raw_receive_rate(infra.broker.port, work, args.single, args.connections)
                copy = raw_copy_rate(infra.db_url, 200_000)
                res.raw_receive.append(recv)
                res.raw_copy.append(copy)
                print(f"raw: paho subscriber {recv:,.0f} msg/s, COPY {copy:,.0f} rows/s")
                for name, start in systems.items():
                    with fresh_database(admin) as url:
                        sys_infra = Infra(infra.broker, url)
                        with start(sys_infra) as system:
                            for shape, per in SHAPES:
                                n = args.single if per == 1 else args.batched
                                fig = measure(
                                    infra.broker.port,
                                    url,
                                    work,
                                    n,
                                    per,
                                    args.connections,
                                    system,
                                    broker,
                                )
                                res.systems[name].setdefault(shape, []).append(fig)
                                print(
                                    f"  {name} {shape}: stored {fig.stored_per_s:,.0f}"
                                    f" readings/s, acked {fig.acked_per_s:,.0f} msg/s,"
                                    f" lost {fig.lost}, duplicated {fig.duplicated},"
                                    f" CPU {fig.cpu_us_per_msg:,.0f} us/msg (broker"
                                    f" {fig.broker_us_per_msg:,.0f}, publishers"
                                    f" {fig.publishers_us_per_msg:,.0f}, postgres"
                                    f" {fig.postgres_us_per_msg:,.0f}, whole machine"
                                    f" {fig.machine_us_per_msg:,.0f})",
                                    flush=True,
                                )
            print_summary(res, skipped)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
