"""Engine failover against a real Mosquitto and PostgreSQL, with `offsite run` processes.

Cluster: 3 ingest processes in one shared group and 2 engines (one active, one standby) on
one database. Reference: a single-process `offsite run` on a database of its own, subscribed
to the same broker, so both get exactly the same input. Under a steady stream with breach
episodes: SIGKILL the active engine, SIGKILL one ingest process (and start it again), then
restart the broker. Afterwards every acknowledged reading is stored once, the clues and
alerts equal the reference's, every notification reached the webhook once, and the standby
took over within the target (measured and printed).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from alerts.notify.webhook import DELIVERY_HEADER
from offsite.embedded import EmbeddedBroker
from subjects.credit_code import check_character
from tests.conftest import _scratch_database
from tests.helpers import KeyedPublisher, wait_until

pytestmark = [
    pytest.mark.skipif(shutil.which("mosquitto") is None, reason="needs the mosquitto binary"),
    pytest.mark.slow,
]

DEVICES = 8
PER_DEVICE_HZ = 5  # readings per second per device
STREAM_S = 36.0
KILL_ENGINE_AT = 9.0
KILL_INGEST_AT = 15.0
RESTART_BROKER_AT = 22.0
TAKEOVER_TARGET_S = 10.0

RULES = {
    "rules": [
        {
            "id": "lel-high",
            "version": 1,
            "department": "EMB",
            "title": "combustible gas high",
            "legal_basis": "test pack",
            "severity": "critical",
            "credit_tiered": False,
            "selector": {"metric": "lel", "role": "gas_detector"},
            "kind": "threshold",
            "op": ">=",
            "limit": 50,
            "clear": 40,
            "for": "1s",
        },
        {
            "id": "lel-mean-high",
            "version": 1,
            "department": "EMB",
            "title": "combustible gas mean high",
            "legal_basis": "test pack",
            "severity": "major",
            "credit_tiered": False,
            "selector": {"metric": "lel", "role": "gas_detector"},
            "kind": "window",
            "agg": "avg",
            "align": "sliding",
            "size": "4s",
            "expected_interval": 0.2,
            "min_valid_ratio": 0.5,
            "op": ">",
            "limit": 35,
        },
    ]
}


def value_of(device: int, i: int) -> float:
    """Breach episodes of 6 s, at a different phase on each device. Long enough that the
    alerts worker sees every clue while it fires even on a loaded machine (a clue that opens
    and resolves between two of its sweeps may not be listed by its alert, in any run)."""
    phase = (i + device * 11) % 70
    if 10 <= phase < 40:
        return 62.0 if phase != 25 else 45.0  # 45: between clear and limit, stays firing
    if 50 <= phase < 53:
        return 55.0  # too short for the hold of lel-high
    return 8.0 + (i * 7 + device) % 11


def credit_code(n: int) -> str:
    first17 = f"91320500MA1F{n:05d}"
    return first17 + check_character(first17)


def device_id(n: int) -> str:
    return f"gd-{n + 1:04d}"


def seed(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as db:
        for n in range(DEVICES):
            code = credit_code(n)
            db.execute(
                "INSERT INTO subjects (credit_code, name, industry, grid)"
                " VALUES (%s, %s, 'hazardous_chemicals', 'G1')",
                (code, f"化工企业 {n}"),
            )
            db.execute(
                "INSERT INTO subject_departments (credit_code, department) VALUES (%s, 'EMB')",
                (code,),
            )
            db.execute(
                "INSERT INTO device_bindings (device_id, credit_code, role)"
                " VALUES (%s, %s, 'gas_detector')",
                (device_id(n), code),
            )


class Hooks:
    """A webhook receiver counting each delivery (by path and outbox id)."""

    def __init__(self) -> None:
        self.deliveries: Counter[tuple[str, int]] = Counter()
        self._lock = threading.Lock()
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with hooks._lock:
                    hooks.deliveries[(self.path, int(self.headers[DELIVERY_HEADER]))] += 1
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def of(self, path: str) -> Counter[int]:
        with self._lock:
            return Counter({i: n for (p, i), n in self.deliveries.items() if p == path})


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    out: Path
    http: str = ""

    def banner(self, timeout: float = 90.0) -> None:
        def started() -> str | None:
            if self.popen.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.popen.returncode}: {self.tail()}")
            m = re.search(r"HTTP +(http://\S+)", self.out.read_text(errors="replace"))
            return m.group(1) if m else None

        self.http = wait_until(started, timeout=timeout, interval=0.2, what=f"{self.name} up")

    def tail(self) -> str:
        return self.out.read_text(errors="replace")[-3000:]

    def subscriptions(self) -> Counter[str]:
        """How many times each ingest child of this process has (re)subscribed, by its log."""
        log = self.out.read_text(errors="replace")
        return Counter(re.findall(r"(ingest-\d+) ingest\.intake: connected .*, subscribed to", log))

    def metric(self, name: str) -> float | None:
        try:
            with urllib.request.urlopen(self.http + "/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return None
        m = re.search(rf"^{name} (\S+)$", text, re.M)
        return float(m.group(1)) if m else None

    def readyz(self) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(self.http + "/readyz", timeout=2) as r:
                return dict(json.loads(r.read()), status=r.status)
        except urllib.error.HTTPError as err:
            return dict(json.loads(err.read()), status=err.code)


class Cluster:
    """`offsite run` processes started with a config file and a few env overrides."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: list[Proc] = []

    def config(self, name: str, db: str, broker: str, hook: str) -> Path:
        rules = self.root / "rules"
        rules.mkdir(exist_ok=True)
        (rules / "gas.yaml").write_text(yaml.safe_dump(RULES), encoding="utf-8")
        path = self.root / f"{name}.yaml"
        settings = {
            "database": {"url": db},
            "mqtt": {"url": broker},
            "http": {"port": 0},
            "auth": {"first_run_admin": False},
            "rules": {"directory": str(rules)},
            "video": {"enabled": False},
            "hj212": {"enabled": False},
            "alerts": {
                "outbox_poll_s": 0.5,
                "repeat_interval_s": 0,
                "routes": [{"name": "hook", "kind": "webhook", "url": hook, "secret": "s3cret"}],
            },
        }
        path.write_text(yaml.safe_dump(settings), encoding="utf-8")
        return path

    def start(self, name: str, config: Path, *roles: str, **env: str) -> Proc:
        out = self.root / f"{name}.log"
        state = self.root / f"state-{name}"
        full = {
            **os.environ,
            "OFFSITE_CONFIG": str(config),
            "OFFSITE_STATE_DIR": str(state),
            "OFFSITE_LOG_LEVEL": "INFO",
            **env,
        }
        args = [sys.executable, "-m", "offsite.cli", "run"]
        for role in roles:
            args += ["--role", role]
        with out.open("ab") as f:
            popen = subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, env=full)
        proc = Proc(name, popen, out)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for p in self.procs:
            if p.popen.poll() is None:
                p.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for p in self.procs:
            try:
                p.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.popen.kill()
                p.popen.wait()


class Stream(KeyedPublisher):
    """Publishes the readings at QoS 1 through restarts of the broker; remembers what the
    broker acknowledged."""

    def __init__(self, port: int) -> None:
        super().__init__(port, f"pub-{uuid.uuid4().hex[:6]}", inflight=200, reconnect_max_s=2)

    def run(self, started: float, stop: threading.Event) -> None:
        i = 0
        step = 1.0 / PER_DEVICE_HZ
        due = time.monotonic()
        while not stop.is_set() and time.monotonic() - started < STREAM_S:
            ts = int(time.time() * 1000)
            for n in range(DEVICES):
                payload = json.dumps({"ts": ts, "values": {"lel": value_of(n, i)}})
                topic = f"offsite/v1/devices/{device_id(n)}/telemetry"
                self.publish(topic, payload, (device_id(n), ts))
            i += 1
            due += step
            time.sleep(max(0.0, due - time.monotonic()))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def second_db(pg_admin_url: str, migrated_template: str) -> Iterator[str]:
    yield from _scratch_database(pg_admin_url, "offsite_t", f' TEMPLATE "{migrated_template}"')


def _rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as db:
        return db.execute(sql).fetchall()


# What the cluster and the reference each hold, compared after the faults.
CLUES = (
    "SELECT rule_id, fingerprint, started_at, ended_at, status, withdrawn, summary"
    " FROM clues ORDER BY fingerprint, started_at"
)
# Each alert's subject, severity, state and number of firing clues.
ALERTS = (
    "SELECT a.credit_code, a.severity, a.state, count(c.id) FILTER (WHERE c.status"
    " = 'firing') FROM alerts a LEFT JOIN alert_clues ac ON ac.alert_id = a.id"
    " LEFT JOIN clues c ON c.id = ac.clue_id GROUP BY a.id ORDER BY a.credit_code, a.id"
)
ATTACHED = (
    "SELECT a.credit_code, c.fingerprint || '@' || c.started_at::text FROM alerts a"
    " JOIN alert_clues ac ON ac.alert_id = a.id JOIN clues c ON c.id = ac.clue_id"
)
NOTIFICATIONS = (
    "SELECT o.id, a.credit_code, o.event, o.status FROM outbox o"
    " JOIN alerts a ON a.id = o.alert_id ORDER BY o.id"
)
STORED = (
    "SELECT device_id, (extract(epoch FROM time) * 1000)::bigint FROM readings WHERE metric = 'lel'"
)


def clues(url: str) -> list[tuple[Any, ...]]:
    return _rows(url, CLUES)


def alerts(url: str) -> list[tuple[Any, ...]]:
    return _rows(url, ALERTS)


def attached(url: str) -> set[tuple[str, str]]:
    return {(code, clue) for code, clue in _rows(url, ATTACHED)}


def notifications(url: str) -> list[tuple[Any, ...]]:
    return _rows(url, NOTIFICATIONS)


def stored(url: str) -> set[tuple[str, int]]:
    return {(d, int(t)) for d, t in _rows(url, STORED)}


def test_active_engine_killed_then_broker_restarted(
    tmp_path: Path, db_url: str, second_db: str
) -> None:
    seed(db_url)
    seed(second_db)
    hooks = Hooks()
    # Mosquitto started by root runs as its own user: its persistence directory must be
    # writable by it, or it logs "Permission denied" and a restart loses every session.
    broker_home = Path(tempfile.mkdtemp(prefix="offsite-test-broker-"))
    broker_home.chmod(0o777)
    broker = EmbeddedBroker(broker_home, port=_free_port())
    broker.start()
    cluster = Cluster(tmp_path)
    hook = f"http://127.0.0.1:{hooks.port}"
    split = cluster.config("split", db_url, broker.url, hook + "/split")
    single_cfg = cluster.config("single", second_db, broker.url, hook + "/single")
    stream: Stream | None = None
    try:
        single = cluster.start("single", single_cfg, OFFSITE_MQTT__CLIENT_ID="offsite-single")

        def start_ingest(k: int, name: str) -> Proc:
            group = {"OFFSITE_MQTT__SHARED_GROUP": "offsite"}
            return cluster.start(
                name, split, "ingest", OFFSITE_MQTT__CLIENT_ID=f"offsite-ingest-{k}", **group
            )

        ingest = [start_ingest(k, f"ingest-{k}") for k in (1, 2, 3)]
        engine_a = cluster.start("engine-a", split, "engine")
        for p in (single, *ingest, engine_a):
            p.banner()
        wait_until(lambda: engine_a.metric("offsite_engine_active") == 1.0, timeout=60,
                   what="engine a active")  # fmt: skip
        engine_b = cluster.start("engine-b", split, "engine")
        engine_b.banner()
        ready = engine_b.readyz()
        assert ready["status"] == 200, ready
        assert ready["checks"].get("engine:standby") is True, ready
        assert engine_b.metric("offsite_engine_active") == 0.0
        wait_until(lambda: all(p.readyz().get("checks", {}).get("broker") for p in ingest),
                   timeout=30, what="ingest connected")  # fmt: skip
        time.sleep(1.0)  # the shared group and the reference's subscription are in place

        stream = Stream(broker.port)
        stop = threading.Event()
        started = time.monotonic()
        publisher = threading.Thread(target=stream.run, args=(started, stop), daemon=True)
        publisher.start()

        def at(t: float) -> None:
            time.sleep(max(0.0, started + t - time.monotonic()))

        at(KILL_ENGINE_AT)
        engine_a.popen.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        wait_until(lambda: engine_b.metric("offsite_engine_active") == 1.0,
                   timeout=30, interval=0.05, what="standby takes over")  # fmt: skip
        took = time.monotonic() - killed
        inside = engine_b.metric("offsite_engine_takeover_seconds")
        print(f"\ntakeover: standby active {took:.2f} s after SIGKILL of the active engine"
              f" ({inside:.2f} s of it from winning the lock to evaluating)")  # fmt: skip
        assert took <= TAKEOVER_TARGET_S, f"takeover took {took:.2f} s"
        assert engine_b.metric("offsite_engine_takeovers_total") == 1.0
        epoch_b = engine_b.metric("offsite_engine_lease_epoch")
        # The killed one comes back (its supervisor restarts it) as a standby.
        engine_a = cluster.start("engine-a2", split, "engine")

        at(KILL_INGEST_AT)
        ingest[1].popen.send_signal(signal.SIGKILL)
        time.sleep(1.0)
        ingest[1] = start_ingest(2, "ingest-2b")

        at(RESTART_BROKER_AT)
        # Devices keep publishing through the restart. Mosquitto 2.0 restores a shared
        # subscription only when a member reconnects, so what is published after its restart
        # and before that reaches no ingest process; it can also drop what it had in flight to
        # a shared member. The engine's non-shared session gets both, and its gap repair
        # stores them (failover/repair.py): nothing acknowledged may be missing afterwards.
        ingest[1].banner()
        before = [p.subscriptions() for p in ingest]
        assert all(before), f"no ingest child's subscription in a log: {before}"
        broker.stop()  # SIGTERM: Mosquitto writes its sessions and queues to disk
        broker.start()
        # Every ingest child subscribed again (its log says so; /readyz reports children's
        # state with a lag and could still show the connection from before the restart).
        wait_until(lambda: all(p.subscriptions()[child] > n
                               for p, seen in zip(ingest, before, strict=True)
                               for child, n in seen.items()),
                   timeout=60, what="every ingest child subscribed again")  # fmt: skip
        wait_until(lambda: all(p.readyz().get("checks", {}).get("broker") for p in ingest),
                   timeout=60, what="ingest back on the broker")  # fmt: skip

        publisher.join(STREAM_S + 30)
        assert not publisher.is_alive()
        wait_until(lambda: not stream.sent, timeout=60, what="every message acknowledged")
        print(f"published {len(stream.published)} messages, {len(stream.acked)} acknowledged")
        engine_a.banner()
        assert engine_a.readyz()["checks"].get("engine:standby") is True
        assert engine_b.metric("offsite_engine_lease_epoch") == epoch_b

        acked = stream.acked
        try:
            wait_until(lambda: stored(db_url) >= acked, timeout=60, what="cluster stored all")
        finally:
            lost = sorted(acked - stored(db_url), key=lambda k: k[1])
            if lost:
                t0 = min(t for _d, t in stream.published)
                print(
                    f"cluster lacks {len(lost)} acknowledged readings, from"
                    f" +{(lost[0][1] - t0) / 1000:.1f} s to +{(lost[-1][1] - t0) / 1000:.1f} s"
                )
                print((broker_home / "mosquitto.log").read_text()[-3000:])
        wait_until(lambda: stored(second_db) >= acked, timeout=60, what="reference stored all")
        time.sleep(1.0)
        # Once each: (device, metric, time) is unique.
        in_cluster, in_reference = stored(db_url), stored(second_db)
        repaired = engine_b.metric("offsite_engine_gap_readings_stored_total")
        print(f"stored: cluster {len(in_cluster)}, reference {len(in_reference)};"
              f" {repaired or 0:.0f} of them by the engine's gap repair")  # fmt: skip
        assert in_cluster == in_reference
        assert in_cluster == acked == stream.published

        def same_clues() -> bool:
            return clues(db_url) == clues(second_db) and len(clues(db_url)) > 0

        try:
            wait_until(same_clues, timeout=60, interval=1.0, what="same clues")
            time.sleep(2.0)  # nothing more arrives
        finally:
            got, want = clues(db_url), clues(second_db)
            missing, extra = set(want) - set(got), set(got) - set(want)
            print(f"clues: cluster {len(got)}, reference {len(want)};"
                  f" missing {sorted(missing)[:5]}, extra {sorted(extra)[:5]}")  # fmt: skip
        assert clues(db_url) == clues(second_db)
        rules_fired = {c[0] for c in clues(db_url)}
        assert rules_fired == {"lel-high", "lel-mean-high"}

        try:
            wait_until(lambda: alerts(db_url) == alerts(second_db), timeout=30, what="same alerts")
        finally:
            got_a, want_a = alerts(db_url), alerts(second_db)
            if got_a != want_a:
                print(f"alerts differ:\n cluster {got_a}\n reference {want_a}")
            only = attached(db_url) ^ attached(second_db)
            print(f"alerts: {len(got_a)}; clues listed by one side only: {only}")
        # Every clue here fires for seconds, so each alert lists the same clues as well.
        assert attached(db_url) == attached(second_db)
        assert len(alerts(db_url)) >= DEVICES // 2

        def delivered(url: str, path: str) -> bool:
            rows = notifications(url)
            sent = {r[0] for r in rows if r[3] == "sent"}
            settled = all(r[3] in ("sent", "suppressed") for r in rows)
            return bool(sent) and settled and set(hooks.of(path)) >= sent

        wait_until(lambda: delivered(db_url, "/split"), timeout=60, what="cluster notified")
        wait_until(lambda: delivered(second_db, "/single"), timeout=60, what="reference notified")
        time.sleep(1.5)  # a second delivery would show now
        for url, path in ((db_url, "/split"), (second_db, "/single")):
            rows = notifications(url)
            counts = hooks.of(path)
            assert set(counts) == {r[0] for r in rows if r[3] == "sent"}
            assert all(n == 1 for n in counts.values()), counts
        assert sorted(r[1:] for r in notifications(db_url)) == sorted(
            r[1:] for r in notifications(second_db)
        )
        with psycopg.connect(db_url) as db:
            lease = db.execute("SELECT epoch FROM engine_lease").fetchone()
        assert lease is not None
        assert lease[0] == epoch_b
    except BaseException:
        for p in cluster.procs:
            print(f"--- {p.name} (exit {p.popen.poll()})\n{p.tail()}")
        raise
    finally:
        if stream is not None:
            stream.close()
        cluster.stop_all()
        broker.stop()
        shutil.rmtree(broker_home, ignore_errors=True)
        hooks.server.shutdown()
        hooks.server.server_close()
