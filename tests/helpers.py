"""Test helpers: a QoS 1 publisher that counts broker acks, polling with a deadline, a
Mosquitto with logins and an app behind a real uvicorn."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

import paho.mqtt.client as mqtt
import psycopg
import uvicorn
from paho.mqtt.enums import CallbackAPIVersion

from offsite.app import OffsiteApp
from offsite.embedded import MOSQUITTO_CONF, BrokerAuth, EmbeddedBroker

T = TypeVar("T")

# Debian's chromium as the browser tests drive it: headless, quiet, nothing fetched.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def wait_until(
    check: Callable[[], T | Literal[False] | None],
    timeout: float = 20.0,
    interval: float = 0.1,
    what: str = "",
) -> T:
    """Poll `check` until it returns a truthy value; fail with `what` after `timeout`.

    The value is returned, typed without the False or None of `cond and value` checks."""
    deadline = time.monotonic() + timeout
    last = check()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
        time.sleep(interval)
        last = check()
    assert last is not None
    assert last is not False
    return last


@contextmanager
def running_offsite(settings: Any) -> Iterator[OffsiteApp]:
    """offsite run in this process with `settings`, once it is connected to the broker."""
    with OffsiteApp(settings) as app:
        wait_until(lambda: app.readiness()["broker"], what="broker connection")
        yield app


def in_threads(target: Callable[[int], object], n: int) -> list[BaseException]:
    """Run target(0) ... target(n - 1) at once, each in a thread of its own, and wait for
    them all: what they raised (for the caller to assert is nothing)."""
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            target(i)
        except BaseException as err:  # surfaced by the caller
            errors.append(err)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def one_row(db: psycopg.Connection[Any], sql: str, *params: object) -> tuple[Any, ...]:
    """The one row `sql` answers (failing if it answers none)."""
    row = db.execute(sql, params or None).fetchone()
    assert row is not None, sql
    return tuple(row)


def scalar(db: psycopg.Connection[Any], sql: str, *params: object) -> int:
    """The integer `sql` answers, a count say."""
    return int(one_row(db, sql, *params)[0])


def stored_counts(url: str, devices: list[str]) -> tuple[int, int]:
    """The devices' readings stored, and how many of them differ (by device, metric, time):
    the two are equal when nothing was stored twice."""
    sql = "SELECT count(*), count(DISTINCT (device_id, metric, time)) FROM readings"
    with psycopg.connect(url) as conn:
        stored, distinct = one_row(conn, sql + " WHERE device_id = ANY(%s)", devices)
    return int(stored), int(distinct)


class Publisher:
    """A paho client publishing at QoS 1; `acked` counts PUBACKs from the broker."""

    def __init__(
        self,
        port: int,
        client_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"pub-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self._lock = threading.Lock()
        self.acked = 0
        self.acked_mids: set[int] = set()
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_publish(
        self, client: object, userdata: object, mid: int, rc: object, props: object
    ) -> None:
        with self._lock:
            self.acked += 1
            self.acked_mids.add(mid)

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, **kw: object) -> int:
        info = self.client.publish(topic, payload, qos=qos, **kw)  # type: ignore[arg-type]
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"publish refused: {mqtt.error_string(info.rc)}")
        return int(info.mid)

    def wait_acked(self, n: int, timeout: float = 30.0) -> None:
        wait_until(lambda: self.acked >= n, timeout, what=f"{n} PUBACKs (have {self.acked})")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class KeyedPublisher:
    """QoS 1 publishes through broker restarts that remember, by a key of the caller's (a
    device and a time), which the broker acknowledged; a PUBACK can arrive before
    publish() has returned its message id."""

    def __init__(self, port: int, client_id: str, inflight: int, reconnect_max_s: int) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.max_inflight_messages_set(inflight)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(1, reconnect_max_s)
        self._lock = threading.Lock()
        self.sent: dict[int, tuple[str, int]] = {}  # waiting for their PUBACK
        self.acked: set[tuple[str, int]] = set()
        self.published: set[tuple[str, int]] = set()
        self._early: set[int] = set()
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_publish(self, client: Any, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        if getattr(rc, "is_failure", False):
            return
        with self._lock:
            key = self.sent.pop(mid, None)
            if key is None:
                self._early.add(mid)  # acknowledged before publish() returned its mid
            else:
                self.acked.add(key)

    def publish(self, topic: str, payload: str, key: tuple[str, int]) -> None:
        info = self.client.publish(topic, payload, qos=1)
        with self._lock:
            if info.mid in self._early:
                self._early.discard(info.mid)
                self.acked.add(key)
            else:
                self.sent[info.mid] = key
        self.published.add(key)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def broker_with_logins(passwords: dict[str, str], prefix: str) -> Iterator[EmbeddedBroker]:
    """Mosquitto with the project's config, a password file of `passwords` and the shipped
    ACL (the body of a fixture: it yields the started broker, then stops it)."""
    # Mosquitto started as root reads its files as the mosquitto user: not under pytest's
    # 0700 basetemp, but in a traversable folder of its own.
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    passwd = folder / "offsite.passwd"
    for i, (user, password) in enumerate(passwords.items()):
        flags = ["-c"] if i == 0 else []
        subprocess.run(["mosquitto_passwd", *flags, "-b", str(passwd), user, password], check=True)
    passwd.chmod(0o644)
    acl = folder / "offsite.acl"
    shutil.copy(MOSQUITTO_CONF.parent / "acl.example", acl)
    acl.chmod(0o644)
    broker = EmbeddedBroker(folder, kind="mosquitto", auth=BrokerAuth(passwd, acl))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def serving(app: Any, **config: Any) -> Iterator[int]:
    """`app` behind a real uvicorn in a thread on a free loopback port (as `offsite run`
    serves it): the port. `config` goes to uvicorn.Config."""
    options: dict[str, Any] = {"host": "127.0.0.1", "port": 0, "log_level": "warning", **config}
    server = uvicorn.Server(uvicorn.Config(app, **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), interval=0.02, what="uvicorn")
    assert server.started, "uvicorn exited while starting"
    try:
        yield int(server.servers[0].sockets[0].getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(10)
    assert not thread.is_alive(), "uvicorn did not stop within 10 s"
