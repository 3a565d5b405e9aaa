"""Engine takeover time: SIGKILL the active engine, time until the standby is active.

Run: .venv/bin/python bench/failover.py [--runs K] [--rate MSG_S] [--database-url URL]

Two `offsite run --role engine` processes on one database and one Mosquitto (both the
benchmark's own), a stream of telemetry at --rate msg/s. Each run kills the active engine,
measures until the other's offsite_engine_active is 1 (and its own figure,
offsite_engine_takeover_seconds: from winning the lock to evaluating), then starts the killed
one again as the new standby. Prints every run and the medians, with the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import free_port, infrastructure, median, scrape, start_publisher, start_server


def _engine(
    work: Path, db_url: str, broker_url: str, name: str
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        "OFFSITE_DATABASE__URL": db_url,
        "OFFSITE_MQTT__URL": broker_url,
        "OFFSITE_ROLES": "engine",
        "OFFSITE_HTTP__PORT": str(port),
        "OFFSITE_STATE_DIR": str(work / f"state-{name}"),
        "OFFSITE_LOG_LEVEL": "WARNING",
        "OFFSITE_VIDEO__ENABLED": "false",
        "OFFSITE_HJ212__ENABLED": "false",
    }
    return start_server(env, work / f"{name}.log"), f"http://127.0.0.1:{port}/metrics"


def _active(url: str) -> float | None:
    try:
        return scrape(url).get("offsite_engine_active")
    except OSError:
        return None


def _wait(check: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit("timed out (see the engine logs in the work directory)")
        time.sleep(0.02)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=500.0, help="telemetry messages/s")
    parser.add_argument("--database-url", default=os.environ.get("OFFSITE_BENCH_DATABASE_URL"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="offsite-bench-failover-"))
    work.chmod(0o777)  # Mosquitto started by root runs as its own user
    with infrastructure(work, args.database_url) as infra:
        engines = dict([_engine(work, infra.db_url, infra.broker.url, n) for n in ("a", "b")])
        seconds = int(args.runs * 15 + 30)
        items = [
            (
                f"offsite/v1/devices/gd-{i % 100 + 1:04d}/telemetry",
                json.dumps({"lel": float(i % 60)}).encode(),
            )
            for i in range(int(args.rate * seconds))
        ]
        publisher = None
        took: list[float] = []
        inside: list[float] = []
        try:
            _wait(lambda: any(_active(u) == 1.0 for u in engines.values()), 120)
            _wait(lambda: all(_active(u) is not None for u in engines.values()), 120)
            publisher, _ = start_publisher(infra.broker.port, items, rate=args.rate)
            time.sleep(3)
            for run in range(args.runs):
                proc, url = next((p, u) for p, u in engines.items() if _active(u) == 1.0)
                other = next(u for p, u in engines.items() if u != url)
                proc.send_signal(signal.SIGKILL)
                killed = time.monotonic()
                _wait(lambda u=other: _active(u) == 1.0, 60)
                took.append(time.monotonic() - killed)
                inside.append(scrape(other).get("offsite_engine_takeover_seconds", float("nan")))
                print(f"run {run + 1}: standby active {took[-1]:.2f} s after SIGKILL"
                      f" ({inside[-1]:.2f} s from winning the lock)", flush=True)  # fmt: skip
                proc.wait()
                del engines[proc]
                name = f"r{run}"
                new, new_url = _engine(work, infra.db_url, infra.broker.url, name)
                engines[new] = new_url
                _wait(lambda u=new_url: _active(u) == 0.0, 120)
                time.sleep(2)
        finally:
            if publisher is not None:
                publisher.terminate()
            for p in engines:
                p.terminate()
                p.wait(30)
    shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()
    print(
        f"takeover after SIGKILL: median {median(took):.2f} s over {len(took)} runs"
        f" (from winning the lock: median {median(inside):.2f} s); target 10 s;"
        f" load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {args.rate:g} msg/s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
