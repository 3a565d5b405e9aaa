"""`offsite simulate`: devices (and cameras) publishing realistic data to any MQTT broker."""

from __future__ import annotations

import argparse
import logging
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TextIO

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.intake import BrokerAddress
from ingest.sim_profiles import CAMERA_PREFIX, CAMERA_SCRIPTS, PROFILES
from ingest.sim_values import DeviceSim, build_fleet
from ingest.topics import DEVICE_ID, frames_topic, status_topic, telemetry_topic

log = logging.getLogger(__name__)

# paho refuses to publish past 65,535 unacknowledged QoS 1 messages (its message ids).
MAX_INFLIGHT = 65_535
# More readings per second than this on one device would need sub-millisecond timestamps,
# and (device, metric, time) must stay unique.
MAX_READINGS_PER_DEVICE_S = 1000
MAX_BATCH = 1000
_ID_PREFIX = re.compile(r"[A-Za-z0-9_.-]{0,40}")


class SimConfigError(ValueError):
    """A simulator option is out of range; the message names the option and the rule."""


@dataclass(frozen=True, slots=True)
class SimConfig:
    """What to simulate and where to publish it."""

    broker_url: str = "mqtt://127.0.0.1:1883"
    devices: int = 10
    rate: float = 10.0  # telemetry messages per second, all devices together
    duration_s: float = 10.0  # publish rate × duration messages; 0 runs until stopped
    batch: int = 1  # readings (timestamps) per message
    qos: int = 1
    username: str | None = None
    password: str | None = None
    cameras: int = 0
    fps: float = 1.0  # frames per second per camera
    breach_ratio: float = 0.01  # share of readings inside a breach episode
    seed: int | None = None
    inflight: int = 1000  # unacknowledged messages at most (QoS > 0)
    id_prefix: str = ""  # prepended to every device id, to run several fleets on one broker
    client_id: str | None = None  # default: offsite-sim-<random>
    utc_offset_h: float = 8.0  # local time of the daily cycles (China Standard Time)
    drain_timeout_s: float = 30.0  # how long to wait for the last acknowledgements

    def __post_init__(self) -> None:
        rules: list[tuple[bool, str]] = [
            (self.devices >= 0, f"--devices must be 0 or more, got {self.devices}"),
            (self.devices + self.cameras > 0, "--devices and --cameras are both 0"),
            (self.rate > 0, f"--rate must be above 0 messages/s, got {self.rate}"),
            (self.duration_s >= 0, f"--duration must be 0 (no end) or more, got {self.duration_s}"),
            (
                1 <= self.batch <= MAX_BATCH,
                f"--batch must be 1..{MAX_BATCH} readings per message, got {self.batch}",
            ),
            (self.qos in (0, 1, 2), f"--qos must be 0, 1 or 2, got {self.qos}"),
            (self.cameras >= 0, f"--cameras must be 0 or more, got {self.cameras}"),
            (0 < self.fps <= 30, f"--fps must be above 0 and at most 30, got {self.fps}"),
            (
                0 <= self.breach_ratio < 1,
                f"--breach-ratio must be at least 0 and below 1, got {self.breach_ratio}",
            ),
            (
                1 <= self.inflight <= MAX_INFLIGHT,
                f"--inflight must be 1..{MAX_INFLIGHT} (paho's limit), got {self.inflight}",
            ),
            (
                bool(_ID_PREFIX.fullmatch(self.id_prefix)),
                f"--id-prefix must match {_ID_PREFIX.pattern}, got {self.id_prefix!r}",
            ),
            (self.drain_timeout_s >= 0, "drain_timeout_s must be 0 or more"),
        ]
        if self.devices > 0:
            per_device = self.rate * self.batch / self.devices
            rules.append(
                (
                    per_device <= MAX_READINGS_PER_DEVICE_S,
                    f"--rate × --batch / --devices is {per_device:.0f} readings/s per device; "
                    f"at most {MAX_READINGS_PER_DEVICE_S} keep timestamps unique to the "
                    "millisecond (add devices)",
                )
            )
        if self.client_id is not None:
            rules.append(
                (
                    bool(DEVICE_ID.fullmatch(self.client_id)),
                    f"client id {self.client_id!r} must match {DEVICE_ID.pattern} "
                    "(its status topic is a device topic)",
                )
            )
        for ok, message in rules:
            if not ok:
                raise SimConfigError(message)
        try:
            BrokerAddress(self.broker_url)
        except ValueError as err:
            raise SimConfigError(f"--broker: {err}") from err

    @property
    def planned_messages(self) -> int | None:
        return round(self.rate * self.duration_s) if self.duration_s > 0 else None

    @property
    def planned_frames(self) -> int | None:
        if self.duration_s <= 0:
            return None
        return round(self.cameras * self.fps * self.duration_s)


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


class TokenBucket:
    """Pacing at `rate` per second with bursts of at most `burst`; `now` is passed in."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = max(1.0, burst)
        self.tokens = 1.0
        self.stamp = now

    def take(self, now: float) -> float:
        """Take one token; 0.0 when taken, else the seconds until one is due (none taken)."""
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        # A token refilled by exactly the advised wait can fall short by a rounding error.
        if self.tokens >= 1.0 - 1e-9:
            self.tokens = max(0.0, self.tokens - 1.0)
            return 0.0
        return (1.0 - self.tokens) / self.rate


class Kind(StrEnum):
    TELEMETRY = "telemetry"
    FRAME = "frame"
    STATUS = "status"


@dataclass(slots=True)
class _Counts:
    sent: int = 0
    acked: int = 0
    failed: int = 0


@dataclass(slots=True)
class _Ledger:
    """Outstanding publishes and their outcome, shared by the publisher threads and paho's."""

    limit: int
    counts: dict[Kind, _Counts] = field(default_factory=lambda: {k: _Counts() for k in Kind})
    pending: dict[int, Kind] = field(default_factory=dict)
    # An ack can arrive before publish() has returned its mid to us; it waits here.
    early: dict[int, bool] = field(default_factory=dict)
    peak: int = 0
    inflight: int = 0
    failures: list[str] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def wait_for_room(self, stop: threading.Event) -> bool:
        with self.cond:
            while self.inflight >= self.limit:
                if stop.is_set():
                    return False
                self.cond.wait(0.1)
        return True

    def sent(self, mid: int, kind: Kind) -> None:
        with self.cond:
            self.counts[kind].sent += 1
            self.inflight += 1
            ok = self.early.pop(mid, None)
            if ok is None:
                self.pending[mid] = kind
            else:
                self._settle(kind, ok)
            self.peak = max(self.peak, self.inflight)

    def completed(self, mid: int, ok: bool, reason: str) -> None:
        with self.cond:
            if not ok and len(self.failures) < 10:
                self.failures.append(reason)
            kind = self.pending.pop(mid, None)
            if kind is None:
                self.early[mid] = ok
            else:
                self._settle(kind, ok)

    def abandon(self) -> None:
        """Count everything still unacknowledged as failed (the drain timed out)."""
        with self.cond:
            for kind in self.pending.values():
                self.counts[kind].failed += 1
                self.inflight -= 1
            if self.pending and len(self.failures) < 10:
                self.failures.append(f"{len(self.pending)} messages never acknowledged")
            self.pending.clear()

    def _settle(self, kind: Kind, ok: bool) -> None:
        c = self.counts[kind]
        self.inflight -= 1
        if ok:
            c.acked += 1
        else:
            c.failed += 1
        self.cond.notify_all()

    def wait_drained(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.1))
        return True


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
    ) -> bool:
        """Publish within the window; False when stopped while waiting for room."""
        while True:
            if not self.ledger.wait_for_room(self.stop if stop is None else stop):
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

    def announce(self, state: str) -> None:
        # Announcements go out even after a stop: `offline` is what a stop must still send.
        never = threading.Event()
        for device in (self.client_id, *(d.device_id for d in self.fleet), *self.cameras):
            self.publish(status_topic(device), state, Kind.STATUS, retain=True, stop=never)

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
        sent = 0
        while (planned is None or sent < planned) and not self.stop.is_set():
            wait = bucket.take(time.monotonic())
            if wait > 0:
                time.sleep(wait)
                continue
            i = sent % n
            device = self.fleet[i]
            payload = self._telemetry(device, i, last_ts, step_ms)
            if not self.publish(topics[i], payload, Kind.TELEMETRY):
                break
            sent += 1

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
        sent = 0
        while (planned is None or sent < planned) and not self.stop.is_set():
            wait = bucket.take(time.monotonic())
            if wait > 0:
                time.sleep(wait)
                continue
            i = sent % len(self.cameras)
            jpeg = next(frames[i])
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.UserProperty = ("ts", str(int(time.time() * 1000)))
            if not self.publish(topics[i], jpeg, Kind.FRAME, properties=props):
                break
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
    # Imported here: cv2 loads only when cameras are asked for, and ingest needs nothing
    # else from the video package.
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
    progress: TextIO | None = None,
) -> SimResult:
    """Publish what `config` asks for, then wait for the acknowledgements.

    `stop` ends the run early; `progress` receives a line every second.
    Raises SimulationError when the broker cannot be reached or refuses the connection.
    """
    stop = stop or threading.Event()
    sim = _Simulator(config, stop, progress)
    sim.connect()
    done = threading.Event()
    try:
        sim.announce("online")
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
        if not sim.ledger.wait_drained(config.drain_timeout_s):
            log.warning("acknowledgements missing after %.0fs", config.drain_timeout_s)
            sim.ledger.abandon()
        # An explicit offline per device: their will cannot be set on a shared connection.
        sim.announce("offline")
        if not sim.ledger.wait_drained(config.drain_timeout_s):
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


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `simulate` subcommand to an argparse subparsers object."""
    d = SimConfig()
    p: argparse.ArgumentParser = subparsers.add_parser(
        "simulate",
        help="publish realistic readings (and camera frames) to a broker",
        description=(
            "Simulated devices publish telemetry to offsite/v1/devices/<id>/telemetry: "
            + ", ".join(f"{pr.prefix} = {pr.kind}" for pr in PROFILES)
            + f"; cameras ({CAMERA_PREFIX}) publish synthetic JPEG frames."
        ),
    )
    p.add_argument("--broker", default=d.broker_url, help="mqtt[s]://[user:pass@]host:port")
    p.add_argument("--devices", type=int, default=d.devices, help="simulated sensors")
    p.add_argument(
        "--rate", type=float, default=d.rate, help="telemetry messages/s, all devices together"
    )
    p.add_argument(
        "--duration",
        type=float,
        default=d.duration_s,
        help="seconds (rate × duration messages are sent); 0 runs until Ctrl-C",
    )
    p.add_argument("--batch", type=int, default=d.batch, help="readings per message")
    p.add_argument("--qos", type=int, default=d.qos, choices=(0, 1, 2))
    p.add_argument("--username", help="broker user (overrides the URL's)")
    p.add_argument("--password", help="broker password (overrides the URL's)")
    p.add_argument("--cameras", type=int, default=d.cameras, help="simulated cameras")
    p.add_argument("--fps", type=float, default=d.fps, help="frames/s per camera")
    p.add_argument(
        "--breach-ratio",
        type=float,
        default=d.breach_ratio,
        help="share of readings inside a breach episode (0 for none)",
    )
    p.add_argument("--seed", type=int, help="make the values reproducible")
    p.add_argument(
        "--inflight", type=int, default=d.inflight, help="unacknowledged messages at most"
    )
    p.add_argument("--id-prefix", default=d.id_prefix, help="prepended to every device id")
    p.add_argument("--client-id", help="MQTT client id (default offsite-sim-<random>)")
    p.add_argument(
        "--utc-offset", type=float, default=d.utc_offset_h, help="hours; local time of day cycles"
    )
    p.set_defaults(func=main)
    return p


def config_from_args(args: argparse.Namespace) -> SimConfig:
    return SimConfig(
        broker_url=args.broker,
        devices=args.devices,
        rate=args.rate,
        duration_s=args.duration,
        batch=args.batch,
        qos=args.qos,
        username=args.username,
        password=args.password,
        cameras=args.cameras,
        fps=args.fps,
        breach_ratio=args.breach_ratio,
        seed=args.seed,
        inflight=args.inflight,
        id_prefix=args.id_prefix,
        client_id=args.client_id,
        utc_offset_h=args.utc_offset,
    )


def summary(result: SimResult) -> str:
    lines = [
        f"simulate: sent {result.messages_sent} messages ({result.readings_sent} readings, "
        f"{result.breach_readings} in breach) from {len(result.devices)} devices in "
        f"{result.elapsed_s:.1f} s = {result.rate:,.1f} msg/s",
        f"simulate: acked {result.messages_acked}, failed {result.messages_failed}; "
        f"status messages {result.status_sent} (acked {result.status_acked}); "
        f"peak in flight {result.peak_inflight}",
    ]
    if result.cameras:
        lines.append(
            f"simulate: frames sent {result.frames_sent} from {len(result.cameras)} cameras, "
            f"acked {result.frames_acked}, failed {result.frames_failed}"
        )
    lines += [f"simulate: failure: {reason}" for reason in result.failures]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    """Run `offsite simulate`; 0 when everything sent was acknowledged."""
    try:
        config = config_from_args(args)
    except SimConfigError as err:
        print(f"offsite simulate: {err}", file=sys.stderr)
        return 2
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        result = run_simulation(config, stop=stop, progress=sys.stderr)
    except SimulationError as err:
        print(f"offsite simulate: {err}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, previous)
    print(summary(result), file=sys.stderr)
    return 0 if result.ok else 1
