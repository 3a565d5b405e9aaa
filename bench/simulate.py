"""Simulator throughput: how many messages/s one `offsite simulate` process can publish.

Run: .venv/bin/python bench/simulate.py [--seconds S] [--runs K]

Starts a Mosquitto with the project's config, then asks the simulator for far more than it
can send (QoS 1) and prints the median achieved rate of K runs for single-reading messages
and 20-reading batches, every message acknowledged. For comparison it measures in the same
run a bare paho publisher sending one pre-built payload as fast as it can (the ceiling of
the client library on this machine).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from offsite.embedded import EmbeddedBroker
from sim.config import SimConfig
from sim.publisher import run_simulation


def bare_paho_rate(port: int, seconds: float) -> float:
    """Pre-built payload, no value generation, same window: paho's own ceiling."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"bench-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5
    )
    client.max_inflight_messages_set(0)
    acked = [0]
    client.on_publish = lambda *_: acked.__setitem__(0, acked[0] + 1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    payload = b'{"ts": 1764150000000, "values": {"pm25": 35.2, "pm10": 80.1}}'
    sent = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if sent - acked[0] >= 1000:
            time.sleep(0.0005)
            continue
        client.publish("offsite/v1/devices/bench-0001/telemetry", payload, qos=1)
        sent += 1
    while acked[0] < sent:
        time.sleep(0.01)
    elapsed = time.monotonic() - start
    client.disconnect()
    client.loop_stop()
    return sent / elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        broker = EmbeddedBroker(Path(tmp), port=None, kind="mosquitto")
        broker.start()
        try:
            raw = statistics.median(
                bare_paho_rate(broker.port, args.seconds) for _ in range(args.runs)
            )
            print(f"bare paho publisher, QoS 1, window 1000:   {raw:10,.0f} msg/s (ceiling)")
            for batch in (1, 20):
                rates, readings, lost = [], [], 0
                for run in range(args.runs):
                    result = run_simulation(
                        SimConfig(
                            broker_url=broker.url,
                            devices=6000,
                            rate=100_000,
                            duration_s=args.seconds,
                            batch=batch,
                            seed=run,
                            id_prefix=f"b{run}-",
                        )
                    )
                    # rate × duration messages are asked for; what took longer shows the limit.
                    rates.append(result.messages_sent / result.elapsed_s)
                    readings.append(result.readings_sent / result.elapsed_s)
                    lost += result.messages_sent - result.messages_acked
                print(
                    f"offsite simulate, QoS 1, batch {batch:2d}:        "
                    f"{statistics.median(rates):10,.0f} msg/s "
                    f"({statistics.median(readings):,.0f} readings/s, "
                    f"{statistics.median(rates) / raw:.2f} x bare), unacknowledged {lost}"
                )
        finally:
            broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
