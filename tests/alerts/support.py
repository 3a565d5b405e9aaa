"""Helpers for alerts tests: a settable clock, clue events and subjects of our own Protocol."""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg

from alerts.subjects_port import StaticSubject, StaticSubjects
from rules.models import ClueEvent, ClueStatus, Severity
from subjects.models import CreditGrade
from tests.helpers import Publisher

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
# Unified social credit codes with their check character (GB 32100-2015).
CHEM = "91320500MA1MXXXX24"
PLANT = "91320500MA1MYYYY53"
SHOP = "91320500MA1MWWWW94"

_ids = itertools.count(1)


class Clock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def subjects() -> StaticSubjects:
    return StaticSubjects(
        [
            StaticSubject(CHEM, grid="G-01", industry="hazardous_chemicals",
                          credit_grade=CreditGrade.C, departments=frozenset({"EEB", "EMB"})),
            StaticSubject(PLANT, grid="G-02", industry="wastewater",
                          credit_grade=CreditGrade.B, departments=frozenset({"EEB"})),
            StaticSubject(SHOP, grid="G-03", industry="food",
                          credit_grade=CreditGrade.A, departments=frozenset({"AMR", "EEB"})),
        ]
    )  # fmt: skip


def clue(
    credit_code: str | None = CHEM,
    department: str = "EEB",
    severity: Severity = Severity.WARNING,
    status: ClueStatus = ClueStatus.FIRING,
    clue_id: int | None = None,
    rule_id: str = "r-cod",
    device: str = "dev-1",
    at: datetime = T0,
) -> ClueEvent:
    cid = clue_id if clue_id is not None else next(_ids)
    return ClueEvent(
        clue_id=cid,
        fingerprint=f"{rule_id}/{device}",
        rule_id=rule_id,
        rule_version=1,
        title=f"{rule_id} breached",
        department=department,
        severity=severity,
        status=status,
        credit_code=credit_code,
        device_ids=(device,),
        started_at=at,
        ended_at=at + timedelta(minutes=5) if status is ClueStatus.RESOLVED else None,
        changed_at=at,
        summary=f"{rule_id} on {device}",
        evidence_ids=("sha256:" + "ab" * 32,),
    )


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str:
        return next(v for k, v in self.headers.items() if k.lower() == name.lower())


@dataclass
class Receiver:
    """A real HTTP server on a loopback port that records what it is sent."""

    port: int
    status: int = 200
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.received.append(Received(self.path, dict(self.headers), body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def bodies(self) -> list[Received]:
        with self.lock:
            return list(self.received)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def running_receiver(status: int = 200) -> Iterator[Receiver]:
    r = Receiver(free_port(), status)
    r.start()
    try:
        yield r
    finally:
        r.stop()


@dataclass
class Frame:
    id: int
    event: str
    data: dict[str, Any]


class Reader:
    """An SSE client on a raw socket, read in a thread so the test can wait with a deadline.

    A raw socket so that close() really hangs up: the server then sees the disconnect.
    """

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.frames: list[Frame] = []
        self.comments: list[str] = []
        parsed = urllib.parse.urlsplit(url)
        self._sock = socket.create_connection((parsed.hostname, parsed.port), timeout=10)
        lines = [
            f"GET {parsed.path}?{parsed.query} HTTP/1.1",
            f"Host: {parsed.netloc}",
            "Accept: text/event-stream",
            *(f"{k}: {v}" for k, v in headers.items()),
        ]
        self._sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self._file = self._sock.makefile("rb")
        status = self._file.readline().decode()
        assert " 200 " in status, status
        while self._file.readline() not in (b"\r\n", b""):
            pass  # response headers
        self._sock.settimeout(None)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _lines(self) -> Iterator[str]:
        # Chunked transfer: a size line, then the chunk; events may span chunks.
        buffer = ""
        while True:
            size_line = self._file.readline()
            if not size_line:
                return
            size = int(size_line.strip() or b"0", 16)
            if size == 0:
                return
            buffer += self._file.read(size).decode()
            self._file.readline()
            *complete, buffer = buffer.split("\n")
            yield from complete

    def _read(self) -> None:
        fields: dict[str, str] = {}
        try:
            for line in self._lines():
                if line.startswith(":"):
                    self.comments.append(line)
                elif line == "":
                    if "id" in fields:
                        self.frames.append(
                            Frame(int(fields["id"]), fields["event"], json.loads(fields["data"]))
                        )
                    fields = {}
                else:
                    key, _, value = line.partition(": ")
                    fields[key] = value
        except (OSError, ValueError):
            return

    def wait(self, n: int, timeout: float = 10.0) -> list[Frame]:
        deadline = time.monotonic() + timeout
        while len(self.frames) < n:
            assert time.monotonic() < deadline, f"only {len(self.frames)} of {n} frames"
            time.sleep(0.02)
        return list(self.frames)

    def wait_connected(self) -> None:
        deadline = time.monotonic() + 10
        while not self.comments:
            assert time.monotonic() < deadline, "no stream preamble"
            time.sleep(0.02)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(5)


def tank_farm(
    db: psycopg.Connection[Any], tmp_path: Path, rule: str, departments: tuple[str, ...] = ("EMB",)
) -> Path:
    """CHEM, supervised by `departments`, with gas detector gas-1; `rule` in a rules folder."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "gas.yaml").write_text(rule, encoding="utf-8")
    db.execute(
        "INSERT INTO subjects (credit_code, name, industry, grid, credit_grade)"
        " VALUES (%s, 'Tank farm', 'hazardous_chemicals', 'G-01', 'C')",
        (CHEM,),
    )
    for department in departments:
        db.execute(
            "INSERT INTO subject_departments (credit_code, department) VALUES (%s, %s)",
            (CHEM, department),
        )
    db.execute(
        "INSERT INTO device_bindings (device_id, credit_code, role)"
        " VALUES ('gas-1', %s, 'gas_detector')",
        (CHEM,),
    )
    return rules


def emb_webhook(receiver: Receiver) -> dict[str, str]:
    """A webhook route of EMB's major and critical alerts to `receiver`."""
    return {"name": "emb", "kind": "webhook", "url": receiver.url, "secret": "s",
            "department": "EMB", "min_severity": "major"}  # fmt: skip


def send_gas_alarm(pub: Publisher, ts: int) -> None:
    """gas-1 reports LEL 62 at `ts` (epoch ms), and the broker acknowledges it."""
    pub.publish("offsite/v1/devices/gas-1/telemetry",
                json.dumps({"ts": ts, "values": {"lel": 62.0}}))  # fmt: skip
    pub.wait_acked(1)
