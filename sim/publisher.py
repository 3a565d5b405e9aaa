"""The simulator's publisher: one paho client sending every device's telemetry and frames."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.intake import BrokerAddress
from ingest.topics import frames_topic, status_topic, telemetry_topic
from sim.config import SimConfig
from sim.ledger import Kind, TokenBucket, _Ledger
from sim.profiles import CAMERA_PREFIX, CAMERA_SCRIPTS
from sim.values import DeviceSim, build_fleet

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SimResult:
    """What a run published and what the broker acknowledged."""

    devices: tuple[str, ...]
    cameras: tuple[str, ...]
    client_id: str
    messages_sent: int
    messages_acked: int
    messages_failed: int
    readings_sent: int  # values, as offsite stores them: one per (device, metric, time)
    breach_readings: int  # of those, values inside a breach episode
    frames_sent: int
    frames_acked: int
    frames_failed: int
    status_sent: int
    status_acked: int
    elapsed_s: float  # from the first publish to the last one (draining not included)
    peak_inflight: int  # most unacknowledged messages at once (bounded by the window)
    failures: tuple[str, ...] = ()  # the first few failure reasons

    @property
    def rate(self) -> float:
        return self.messages_sent / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def ok(self) -> bool:
        return (
            self.messages_failed == 0
            and self.frames_failed == 0
            and self.messages_acked == self.messages_sent
            and self.frames_acked == self.frames_sent
            and self.status_acked == self.status_sent
        )


class SimulationError(RuntimeError):
    """The broker could not be reached or refused us; the message says why."""


class _Simulator:
    """One paho client publishing for every simulated device and camera."""

    def __init__(self, config: SimConfig, stop: threading.Event, progress: TextIO | None) -> None:
        self.config = config
        self.stop = stop
        self.progress = progress
        self.client_id = config.client_id or f"offsite-sim-{uuid.uuid4().hex[:8]}"
        self.seed = config.seed if config.seed is not None else uuid.uuid4().int & 0xFFFF_FFFF
        self.fleet = build_fleet(
            config.devices,
            seed=self.seed,
            breach_ratio=config.breach_ratio,
            utc_offset_h=config.utc_offset_h,
            id_prefix=config.id_prefix,
        )
        self.cameras = tuple(
            f"{config.id_prefix}{CAMERA_PREFIX}-{n:04d}" for n in range(1, config.cameras + 1)
        )
        self.ledger = _Ledger(limit=config.inflight)
        self.readings = 0
        self.breaches = 0
        self._connected = threading.Event()
        self._connect_error: str | None = None
        self.address = BrokerAddress(config.broker_url)
        self.client = self._build_client()

    def _build_client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5
        )
        username = self.config.username or self.address.username
        password = self.config.password or self.address.password
        if username:
            client.username_pw_set(username, password)
        if self.address.tls:
            client.tls_set()
        # The devices share this one connection, so only the simulator itself can have a
        # will; each device gets an explicit `offline` at the end instead.
        client.will_set(status_topic(self.client_id), "offline", qos=1, retain=True)
        # paho's own in-flight bound rescans every queued message on each ack (slow with a
        # large window); the ledger holds the window instead, so paho never queues.
        client.max_inflight_messages_set(0)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            self._connect_error = f"broker refused the connection: {reason}"
        else:
            # Stay within what the broker will take unacknowledged from us (MQTT 5).
            receive_max = getattr(props, "ReceiveMaximum", None)
            if receive_max:
                with self.ledger.cond:
                    self.ledger.limit = min(self.config.inflight, int(receive_max))
            log.info("connected to %s:%d", self.address.host, self.address.port)
        self._connected.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            log.warning("disconnected from the broker (%s); paho reconnects", reason)

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any
    ) -> None:
        failed = bool(getattr(reason, "is_failure", False))
        self.ledger.completed(mid, not failed, str(reason))

    def connect(self) -> None:
        try:
            self.client.connect(self.address.host, self.address.port, keepalive=30)
        except OSError as err:
            raise SimulationError(
                f"cannot reach the broker at {self.config.broker_url}: {err}"
            ) from err
        self.client.loop_start()
        if not self._connected.wait(15):
            self.client.loop_stop()
            raise SimulationError(f"no answer from the broker at {self.config.broker_url}")
        if self._connect_error:
            self.client.loop_stop()
            raise SimulationError(self._connect_error)

    def publish(
        self,
        topic: str,
        payload: bytes | str,
        kind: Kind,
        *,
        retain: bool = False,
        properties: Properties | None = None,
        stop: threading.Event | None = None,
        deadline: float | None = None,
    ) -> bool:
        """Publish within the window; False when stopped (or past `deadline`) waiting for room."""
        while True:
            if not self.ledger.wait_for_room(self.stop if stop is None else stop, deadline):
                return False
            info = self.client.publish(
                topic, payload, qos=self.config.qos, retain=retain, properties=properties
            )
            # NO_CONN: paho keeps the message and sends it on reconnect, so it is outstanding.
            if info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                self.ledger.sent(info.mid, kind)
                return True
            if info.rc != mqtt.MQTT_ERR_QUEUE_SIZE:
                raise SimulationError(f"publish to {topic} refused: {mqtt.error_string(info.rc)}")
            time.sleep(0.005)

    def announce(self, state: str, stop: threading.Event, timeout_s: float) -> bool:
        """Publish `state` for every device; False when `stop` or the timeout cut it short.

        `offline` must still go out after a stop, so the caller passes a stop of its own (the
        second Ctrl-C) rather than the one that ended publishing.
        """
        deadline = time.monotonic() + timeout_s
        for device in (self.client_id, *(d.device_id for d in self.fleet), *self.cameras):
            topic = status_topic(device)
            if not self.publish(
                topic, state, Kind.STATUS, retain=True, stop=stop, deadline=deadline
            ):
                return False
        return True

    def run_telemetry(self) -> None:
        config = self.config
        if not self.fleet:
            return
        planned = config.planned_messages
        n = len(self.fleet)
        topics = [telemetry_topic(d.device_id) for d in self.fleet]
        message_interval_s = n / config.rate
        step_ms = max(1, int(1000 * message_interval_s / config.batch))
        last_ts = [0] * n
        bucket = TokenBucket(config.rate, burst=config.rate * 0.05, now=time.monotonic())
        for sent in self._paced(bucket, planned):
            i = sent % n
            device = self.fleet[i]
            payload = self._telemetry(device, i, last_ts, step_ms)
            if not self.publish(topics[i], payload, Kind.TELEMETRY):
                break

    def _telemetry(self, device: DeviceSim, i: int, last_ts: list[int], step_ms: int) -> bytes:
        k = self.config.batch
        first = int(time.time() * 1000) - (k - 1) * step_ms
        # Never reuse a timestamp: (device, metric, time) is the readings key.
        first = max(first, last_ts[i] + 1)
        dt_s = step_ms / 1000 if last_ts[i] else 0.0
        entries = []
        for j in range(k):
            ts = first + j * step_ms
            values, breach = device.values(ts, dt_s)
            dt_s = step_ms / 1000
            if breach:
                self.breaches += device.breach_metrics
            entries.append({"ts": ts, "values": values})
        last_ts[i] = first + (k - 1) * step_ms
        self.readings += k * len(device.profile.metrics)
        return orjson.dumps(entries if k > 1 else entries[0])

    def run_frames(self) -> None:
        config = self.config
        if not self.cameras:
            return
        frames = [_camera_frames(config, i, self.seed) for i in range(len(self.cameras))]
        topics = [frames_topic(c) for c in self.cameras]
        planned = config.planned_frames
        total_fps = config.fps * len(self.cameras)
        bucket = TokenBucket(total_fps, burst=len(self.cameras), now=time.monotonic())
        for sent in self._paced(bucket, planned):
            i = sent % len(self.cameras)
            jpeg = next(frames[i])
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.UserProperty = ("ts", str(int(time.time() * 1000)))
            if not self.publish(topics[i], jpeg, Kind.FRAME, properties=props):
                break

    def _paced(self, bucket: TokenBucket, planned: int | None) -> Iterator[int]:
        """0, 1, 2, ... as the bucket allows, until `planned` are sent or the stop is set."""
        sent = 0
        while (planned is None or sent < planned) and not self.stop.is_set():
            wait = bucket.take(time.monotonic())
            if wait > 0:
                time.sleep(wait)
                continue
            yield sent
            sent += 1

    def report(self, done: threading.Event, started: float) -> None:
        out = self.progress
        if out is None:
            return
        last_sent, last_t = 0, started
        while not done.wait(1.0):
            now = time.monotonic()
            with self.ledger.cond:
                t = self.ledger.counts[Kind.TELEMETRY]
                f = self.ledger.counts[Kind.FRAME]
                sent, acked, frames = t.sent, t.acked, f.sent
            rate = (sent - last_sent) / (now - last_t)
            last_sent, last_t = sent, now
            line = (
                f"simulate: {now - started:6.1f}s  sent {sent}  acked {acked}  "
                f"rate {rate:,.0f} msg/s  readings {self.readings}"
            )
            if self.cameras:
                line += f"  frames {frames}"
            print(line, file=out, flush=True)

    def result(self, elapsed_s: float) -> SimResult:
        with self.ledger.cond:
            c = self.ledger.counts
            return SimResult(
                devices=tuple(d.device_id for d in self.fleet),
                cameras=self.cameras,
                client_id=self.client_id,
                messages_sent=c[Kind.TELEMETRY].sent,
                messages_acked=c[Kind.TELEMETRY].acked,
                messages_failed=c[Kind.TELEMETRY].failed,
                readings_sent=self.readings,
                breach_readings=self.breaches,
                frames_sent=c[Kind.FRAME].sent,
                frames_acked=c[Kind.FRAME].acked,
                frames_failed=c[Kind.FRAME].failed,
                status_sent=c[Kind.STATUS].sent,
                status_acked=c[Kind.STATUS].acked,
                elapsed_s=elapsed_s,
                peak_inflight=self.ledger.peak,
                failures=tuple(self.ledger.failures),
            )


def _camera_frames(config: SimConfig, index: int, seed: int) -> Iterator[bytes]:
    # Imported here: OpenCV loads only when cameras are asked for.
    from video.synthetic import Scene, SyntheticCamera

    script = CAMERA_SCRIPTS[index % len(CAMERA_SCRIPTS)]
    events = config.breach_ratio > 0
    scene = Scene(
        fps=config.fps,
        seed=seed + index,
        movers=script.movers,
        flame=events and script.flame_from_s is not None,
        flame_from_s=script.flame_from_s or 0.0,
        smoke=events and script.smoke_from_s is not None,
        smoke_from_s=script.smoke_from_s or 0.0,
        cover_after_s=script.cover_after_s if events else None,
    )
    camera = SyntheticCamera(scene)
    n = 0
    while True:
        yield camera.jpeg(n)
        n += 1


def run_simulation(
    config: SimConfig,
    *,
    stop: threading.Event | None = None,
    abort: threading.Event | None = None,
    progress: TextIO | None = None,
) -> SimResult:
    """Publish what `config` asks for, then wait for the acknowledgements.

    `stop` ends publishing early (the devices still say `offline`); `abort` also ends the
    wait for acknowledgements and announcements; `progress` receives a line every second.
    Raises SimulationError when the broker cannot be reached or refuses the connection.
    """
    stop = stop or threading.Event()
    abort = abort or threading.Event()
    sim = _Simulator(config, stop, progress)
    sim.connect()
    done = threading.Event()
    try:
        sim.announce("online", stop, config.drain_timeout_s)
        started = time.monotonic()
        reporter = threading.Thread(target=sim.report, args=(done, started), daemon=True)
        reporter.start()
        errors: list[BaseException] = []
        frames = threading.Thread(
            target=_capture(sim.run_frames, errors, stop), name="sim-frames", daemon=True
        )
        frames.start()
        try:
            sim.run_telemetry()
        except BaseException:
            stop.set()
            raise
        finally:
            frames.join()
        elapsed = time.monotonic() - started
        done.set()
        reporter.join()
        if errors:
            raise errors[0]
        if not sim.ledger.wait_drained(config.drain_timeout_s, abort):
            log.warning("acknowledgements missing after %.0fs", config.drain_timeout_s)
            sim.ledger.abandon()
        # An explicit offline per device: their will cannot be set on a shared connection.
        if not sim.announce("offline", abort, config.drain_timeout_s):
            log.warning("not every device could announce offline (stopped or window full)")
        if not sim.ledger.wait_drained(config.drain_timeout_s, abort):
            sim.ledger.abandon()
        return sim.result(elapsed)
    finally:
        done.set()
        sim.client.disconnect()
        sim.client.loop_stop()


def _capture(
    target: Callable[[], None], errors: list[BaseException], stop: threading.Event
) -> Callable[[], None]:
    def run() -> None:
        try:
            target()
        except BaseException as err:
            errors.append(err)
            stop.set()  # the other publisher must not run on alone

    return run
