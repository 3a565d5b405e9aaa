"""The simulator against the real broker: every message arrives, decodes, and is paced."""

from __future__ import annotations

import random
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import cv2
import numpy as np
import orjson
import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ingest.codec import METRIC_NAME, Limits, decode_telemetry
from ingest.topics import PREFIX, parse_topic
from offsite.app import OffsiteApp
from offsite.embedded import EmbeddedBroker, free_port
from sim.config import SimConfig, SimConfigError
from sim.ledger import Kind, TokenBucket
from sim.profiles import PROFILES
from sim.publisher import SimulationError, run_simulation
from sim.values import build_fleet
from tests.helpers import wait_until

LIMITS = Limits(
    max_payload_bytes=256 * 1024, max_future=timedelta(minutes=5), retention=timedelta(days=365)
)


@dataclass
class Received:
    topic: str
    payload: bytes
    props: Any


@dataclass
class Subscriber:
    """A paho subscriber on every device topic, keeping what belongs to one id prefix."""

    port: int
    prefix: str
    messages: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"sim-sub-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.connect("127.0.0.1", self.port)
        self.client.subscribe(PREFIX + "+/+", qos=1)
        self.client.loop_start()
        assert self.subscribed.wait(10), "no SUBACK"

    def _on_message(self, client: object, userdata: object, msg: mqtt.MQTTMessage) -> None:
        device = msg.topic[len(PREFIX) :].split("/")[0]
        if device.startswith(self.prefix):
            with self.lock:
                self.messages.append(Received(msg.topic, bytes(msg.payload), msg.properties))

    def channel(self, name: str) -> list[Received]:
        with self.lock:
            return [m for m in self.messages if m.topic.endswith("/" + name)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:6]}-"


@pytest.fixture
def sub(broker: EmbeddedBroker, prefix: str) -> Any:
    s = Subscriber(broker.port, prefix)
    yield s
    s.close()


def config(broker: EmbeddedBroker, prefix: str, **kw: Any) -> SimConfig:
    base = SimConfig(
        broker_url=broker.url,
        id_prefix=prefix,
        client_id=f"{prefix}sim",
        seed=7,
        devices=6,
        rate=200,
        duration_s=1.0,
    )
    return base.replace(**kw)


def decode_all(received: list[Received]) -> list[tuple[str, Any]]:
    """Every payload through the server's own codec; no rejection is allowed."""
    now = datetime.now(UTC)
    out = []
    for m in received:
        device = parse_topic(m.topic).device_id
        decoded = decode_telemetry(device, m.payload, LIMITS, now)
        assert decoded.rejections == (), (m.topic, m.payload, decoded.rejections)
        out.append((device, decoded))
    return out


def test_every_message_arrives_and_decodes(
    broker: EmbeddedBroker, sub: Subscriber, prefix: str
) -> None:
    result = run_simulation(config(broker, prefix, devices=6, rate=200, duration_s=1.0))

    assert result.ok, result
    assert result.messages_sent == result.messages_acked == 200
    assert result.messages_failed == 0
    telemetry = wait_until(
        lambda: len(sub.channel("telemetry")) >= 200 and sub.channel("telemetry"),
        what="200 telemetry messages",
    )
    assert len(telemetry) == 200
    decoded = decode_all(telemetry)
    readings = [r for _, d in decoded for r in d.readings]
    assert len(readings) == result.readings_sent
    assert all(isinstance(orjson.loads(m.payload), dict) for m in telemetry)  # no batch: objects
    # One device of each profile, taking turns: equal shares.
    per_device = Counter(device for device, _ in decoded)
    assert sorted(per_device) == sorted(result.devices)
    assert set(per_device.values()) == {200 // 6, 200 // 6 + 1}
    # Each device sends exactly its profile's metrics.
    by_prefix = {p.prefix: {m.name for m in p.metrics} for p in PROFILES}
    for device, d in decoded:
        kind = device[len(prefix) :].split("-")[0]
        assert {r.metric for r in d.readings} == by_prefix[kind]
    keys = [(r.device_id, r.metric, r.time) for r in readings]
    assert len(keys) == len(set(keys)), "a (device, metric, time) key was sent twice"


def test_batches_hold_k_readings_with_unique_increasing_times(
    broker: EmbeddedBroker, sub: Subscriber, prefix: str
) -> None:
    # 400 msg/s × 5 readings over 2 devices: 1,000 readings/s each, 1 ms apart.
    result = run_simulation(config(broker, prefix, devices=2, rate=400, duration_s=0.5, batch=5))

    assert result.ok, result
    assert result.messages_sent == 200
    # aq-0001 (6 metrics) and ww-0001 (4 metrics): 500 timestamps each.
    assert result.readings_sent == 500 * 6 + 500 * 4
    telemetry = wait_until(
        lambda: len(sub.channel("telemetry")) >= 200 and sub.channel("telemetry"),
        what="200 batches",
    )
    last: dict[str, int] = {}
    for m in telemetry:
        doc = orjson.loads(m.payload)
        assert isinstance(doc, list)
        assert len(doc) == 5
        stamps = [e["ts"] for e in doc]
        device = parse_topic(m.topic).device_id
        assert stamps == sorted(set(stamps)), stamps
        assert stamps[0] > last.get(device, 0), "a batch reuses an earlier timestamp"
        last[device] = stamps[-1]
    decoded = decode_all(telemetry)
    assert sum(len(d.readings) for _, d in decoded) == result.readings_sent


def test_rate_is_paced_not_burst(broker: EmbeddedBroker, prefix: str) -> None:
    result = run_simulation(config(broker, prefix, rate=100, duration_s=2.0))

    assert result.messages_sent == 200
    # Unpaced, 200 messages leave in a few milliseconds; paced, they take about 2 s. Only
    # the bounds that pacing guarantees are checked: a loaded machine may make it slower.
    assert result.elapsed_s >= 1.0, result.elapsed_s
    assert result.rate <= 200


def test_status_online_first_offline_last(
    broker: EmbeddedBroker, sub: Subscriber, prefix: str
) -> None:
    result = run_simulation(config(broker, prefix, devices=7, rate=100, duration_s=0.3))

    everyone = {result.client_id, *result.devices}
    assert result.status_sent == result.status_acked == 2 * len(everyone)

    def statuses() -> dict[str, list[bytes]]:
        out: dict[str, list[bytes]] = {}
        for m in sub.channel("status"):
            out.setdefault(parse_topic(m.topic).device_id, []).append(m.payload)
        return out

    seen = wait_until(
        lambda: (s := statuses()) and all(len(s.get(d, [])) >= 2 for d in everyone) and s,
        what="online and offline of every device",
    )
    assert set(seen) == everyone
    for device in everyone:
        assert seen[device] == [b"online", b"offline"], device


def test_camera_frames_are_jpegs_with_device_time(
    broker: EmbeddedBroker, sub: Subscriber, prefix: str
) -> None:
    before = int(time.time() * 1000)
    result = run_simulation(
        config(broker, prefix, devices=0, cameras=2, fps=4, duration_s=1.0, breach_ratio=0.5)
    )

    assert result.ok, result
    assert result.frames_sent == result.frames_acked == 8
    assert result.messages_sent == 0
    frames = wait_until(
        lambda: len(sub.channel("frames")) >= 8 and sub.channel("frames"), what="8 frames"
    )
    assert {parse_topic(m.topic).device_id for m in frames} == set(result.cameras)
    for m in frames:
        image = cv2.imdecode(np.frombuffer(m.payload, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None
        assert image.shape == (480, 640, 3)
        ts = dict(m.props.UserProperty)["ts"]
        assert before <= int(ts) <= int(time.time() * 1000)


def test_inflight_window_is_bounded(broker: EmbeddedBroker, prefix: str) -> None:
    result = run_simulation(config(broker, prefix, rate=5000, duration_s=0.4, inflight=3))

    assert result.ok, result
    assert result.messages_acked == 2000
    assert 1 <= result.peak_inflight <= 3


def test_stop_ends_an_endless_run_and_still_says_offline(
    broker: EmbeddedBroker, sub: Subscriber, prefix: str
) -> None:
    stop = threading.Event()
    timer = threading.Timer(0.5, stop.set)
    timer.start()
    result = run_simulation(config(broker, prefix, rate=100, duration_s=0), stop=stop)

    assert result.ok, result
    assert 0 < result.messages_sent < 500
    offline = wait_until(
        lambda: [m for m in sub.channel("status") if m.payload == b"offline"] or None,
        what="offline statuses",
    )
    assert len(offline) >= 1


def test_unreachable_broker_is_a_clear_error(prefix: str) -> None:
    url = f"mqtt://127.0.0.1:{free_port()}"
    with pytest.raises(SimulationError, match="cannot reach the broker"):
        run_simulation(SimConfig(broker_url=url, duration_s=0.1))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rate": 0}, "--rate must be above 0"),
        ({"batch": 0}, "--batch must be 1..1000"),
        ({"devices": 0, "cameras": 0}, "--devices and --cameras are both 0"),
        ({"breach_ratio": 1.0}, "--breach-ratio must be at least 0 and below 1"),
        ({"inflight": 70000}, "--inflight must be 1..65535"),
        ({"devices": 1, "rate": 500, "batch": 3}, "1500 readings/s per device"),
        ({"id_prefix": "a/b"}, "--id-prefix must match"),
        ({"client_id": "sim+1"}, "client id 'sim\\+1' must match"),
        ({"broker_url": "http://x"}, "--broker: broker url 'http://x' must start with mqtt://"),
        ({"qos": 3}, "--qos must be 0, 1 or 2"),
    ],
)
def test_bad_options_name_the_option_and_the_rule(options: dict[str, Any], message: str) -> None:
    with pytest.raises(SimConfigError, match=message):
        SimConfig(**options)


def test_token_bucket_paces_to_the_rate_after_a_short_burst() -> None:
    bucket = TokenBucket(rate=100, burst=5, now=0.0)
    taken, now = 0, 0.0
    while now < 10.0:
        wait = bucket.take(now)
        if wait == 0:
            taken += 1
        else:
            now += wait
    # 10 s at 100/s plus at most the initial token.
    assert 1000 <= taken <= 1001
    # After a long pause only `burst` tokens are available at once.
    later = now + 60.0
    burst = 0
    while bucket.take(later) == 0:
        burst += 1
    assert burst == 5


def test_breach_share_follows_the_ratio_in_episodes() -> None:
    fleet = build_fleet(300, seed=3, breach_ratio=0.1)
    inside = total = episodes = 0
    for device in fleet:
        previous = False
        for step in range(500):
            _, breach = device.values(1_764_000_000_000 + step * 10_000, 10.0)
            inside += breach
            episodes += breach and not previous
            previous = breach
            total += 1
    share = inside / total
    assert 0.05 <= share <= 0.2, share
    # Episodes, not lone outliers: a breach lasts several readings on average.
    assert inside / episodes >= 3


def test_no_breaches_when_the_ratio_is_zero() -> None:
    fleet = build_fleet(60, seed=3, breach_ratio=0.0)
    assert not any(d.values(1_764_000_000_000 + i, 1.0)[1] for d in fleet for i in range(200))


def test_treatment_power_follows_production_except_when_switched_off() -> None:
    fleet = {d.device_id: d for d in build_fleet(30, seed=11, breach_ratio=0.2)}
    pairs = [(fleet[f"pp-{n:04d}"], fleet[f"tp-{n:04d}"]) for n in range(1, 6)]
    start = 1_764_000_000_000
    on_prod, on_treat, off_seen = [], [], 0
    for pp, tp in pairs:
        for step in range(0, 24 * 360):  # a day at 10 s
            ts = start + step * 10_000
            production = pp.values(ts, 10.0)[0]["power"]
            treatment, off = tp.values(ts, 10.0)
            if off:
                off_seen += 1
                # The rule in deploy/rules/power.yaml: production > 30 kW, treatment < 5 kW.
                assert treatment["power"] < 5
                assert production > 30
            else:
                on_prod.append(production)
                on_treat.append(treatment["power"])
    assert off_seen > 0
    assert statistics.correlation(on_prod, on_treat) > 0.9
    ratio = statistics.median(t / p for p, t in zip(on_prod, on_treat, strict=True))
    assert 0.3 <= ratio <= 0.35


def test_profiles_table_is_valid_data() -> None:
    prefixes = [p.prefix for p in PROFILES]
    assert len(prefixes) == len(set(prefixes))
    for profile in PROFILES:
        assert profile.episode_s > 0
        for m in profile.metrics:
            assert METRIC_NAME.fullmatch(m.name), m.name
            assert m.low <= m.high
            if m.breach is not None:
                assert m.low <= m.breach <= m.high


def test_values_stay_within_instrument_range_over_a_day() -> None:
    rng = random.Random(5)
    for device in build_fleet(12, seed=rng.randrange(1000), breach_ratio=0.3):
        limits = {m.name: (m.low, m.high) for m in device.profile.metrics}
        for step in range(0, 24 * 60):
            values, _ = device.values(1_764_000_000_000 + step * 60_000, 60.0)
            for name, v in values.items():
                low, high = limits[name]
                assert low <= v <= high, (device.device_id, name, v)


def test_cli_simulate_runs_and_summarises(
    broker: EmbeddedBroker, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from offsite.cli import main

    code = main(
        [
            "simulate",
            "--broker",
            broker.url,
            "--devices",
            "3",
            "--rate",
            "50",
            "--duration",
            "1.2",
            "--batch",
            "2",
            "--seed",
            "1",
            "--id-prefix",
            prefix,
        ]
    )

    assert code == 0
    err = capsys.readouterr().err
    # aq, ww, tk with 6, 4 and 3 metrics: 20 messages of 2 timestamps each.
    assert "simulate: sent 60 messages (520 readings" in err
    assert "acked 60, failed 0" in err
    assert "msg/s  readings" in err  # the progress line


def test_cli_rejects_bad_options_with_exit_code_2(capsys: pytest.CaptureFixture[str]) -> None:
    from offsite.cli import main

    assert main(["simulate", "--batch", "0"]) == 2
    assert "--batch must be 1..1000" in capsys.readouterr().err


def test_offsite_stores_every_simulated_reading_and_refuses_none(
    make_settings: Callable[..., Any],
    broker: EmbeddedBroker,
    db: psycopg.Connection[Any],
    prefix: str,
) -> None:
    with OffsiteApp(make_settings()) as app:
        wait_until(lambda: app.readiness()["broker"], what="broker connection")
        result = run_simulation(
            config(broker, prefix, devices=6, rate=300, duration_s=1.0, batch=4, breach_ratio=0.3)
        )
        assert result.ok, result

        def stored() -> int:
            row = db.execute(
                "SELECT count(*) FROM readings WHERE device_id LIKE %s", (prefix + "%",)
            ).fetchone()
            return int(row[0]) if row else 0

        wait_until(lambda: stored() >= result.readings_sent, what="every simulated reading")
        assert stored() == result.readings_sent
        dead = db.execute(
            "SELECT count(*) FROM dead_letters WHERE topic LIKE %s", (f"%/{prefix}%",)
        ).fetchone()
        assert dead == (0,)
        devices = wait_until(
            lambda: (
                (
                    rows := db.execute(
                        "SELECT device_id, online FROM devices WHERE device_id LIKE %s",
                        (prefix + "%",),
                    ).fetchall()
                )
                and len(rows) == 7
                and not any(online for _, online in rows)
                and rows
            ),
            what="every device registered and offline at the end",
        )
        assert {d for d, _ in devices} == {result.client_id, *result.devices}


@pytest.mark.parametrize("abort_set", [True, False])
def test_offline_announcement_gives_up_when_aborted_or_past_its_deadline(abort_set: bool) -> None:
    """With the window full (acks not coming), a stop must not wait for room for ever."""
    from sim.publisher import _Simulator

    sim = _Simulator(SimConfig(devices=2, client_id="sim-full"), threading.Event(), None)
    sim.ledger.inflight = sim.ledger.limit  # nothing will ever be acknowledged
    abort = threading.Event()
    if abort_set:
        abort.set()
    outcome: list[bool] = []
    worker = threading.Thread(target=lambda: outcome.append(sim.announce("offline", abort, 0.5)))
    worker.start()
    worker.join(timeout=20)

    assert not worker.is_alive(), "announce() kept waiting for room in a full window"
    assert outcome == [False]
    assert sim.ledger.counts[Kind.STATUS].sent == 0


def test_cli_options_are_the_config_fields() -> None:
    """Every command-line option comes from a SimConfig field, with its default there."""
    import argparse

    from sim.cli import add_parser, config_from_args

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["simulate", "--devices", "4", "--utc-offset", "0"])
    assert config_from_args(args) == SimConfig(devices=4, utc_offset_h=0.0)
    assert config_from_args(parser.parse_args(["simulate"])) == SimConfig()
