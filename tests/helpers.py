"""Test helpers: a QoS 1 publisher that counts broker acks, and polling with a deadline."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Literal, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

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
