"""A load generator that is not the ceiling: many `mosquitto_pub -l` connections at QoS 1.

    python bench/loadgen.py --port 1883 [--connections 50] [--messages 200000] [--per 1]

Each connection is one `mosquitto_pub` process publishing one device's payload lines from a
file (one line, one message) at QoS 1, as fast as the broker acknowledges. The C client
costs a fraction of what a Python publisher does, so the figures show the subscriber and
the database, not the publisher. At the end of its input `mosquitto_pub -l` disconnects only
once the broker has acknowledged its last message, so a connection that exits 0 had every
line acknowledged: that is the broker-acked count, reported apart from what the subscriber
stored. `--count-acks` counts the PUBACKs one by one from each process's debug output
instead, for a broker that may refuse some; that output and the grep that counts it cost
the machine a few microseconds a message (publishers' CPU, medians of 3 bench/ingest.py
runs: 25 -> 23 us a single-reading message, 18 -> 15 us a 20-reading one).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

TELEMETRY = "offsite/v1/devices/{device}/telemetry"


@dataclass(frozen=True, slots=True)
class Job:
    """One connection: a topic and the file of payload lines it publishes."""

    topic: str
    lines: Path
    messages: int


@dataclass(frozen=True, slots=True)
class LoadResult:
    published: int  # lines handed to the publishers
    acked: int  # PUBACKs the broker sent back
    seconds: float  # first connection started to last one finished
    failed: int  # publisher processes that exited non-zero

    @property
    def acked_per_s(self) -> float:
        return self.acked / self.seconds if self.seconds > 0 else float("nan")


def payload(ts: int, per: int, value: int) -> str:
    """One telemetry message of `per` readings with consecutive millisecond stamps."""
    if per == 1:
        return f'{{"ts": {ts}, "values": {{"pm25": {value % 500}.5}}}}'
    items = ", ".join(
        f'{{"ts": {ts + k}, "values": {{"pm25": {(value + k) % 500}.5}}}}' for k in range(per)
    )
    return f"[{items}]"


def write_jobs(
    work: Path,
    tag: str,
    connections: int,
    messages: int,
    per: int,
    base_ms: int,
    topic: str = TELEMETRY,
) -> list[Job]:
    """Split `messages` over `connections` devices `<tag>-<c>`; every reading has its own key."""
    work.mkdir(parents=True, exist_ok=True)
    jobs = []
    for c in range(connections):
        n = messages // connections + (1 if c < messages % connections else 0)
        device = f"{tag}-{c:04d}"
        path = work / f"{device}.lines"
        with path.open("w", encoding="ascii") as f:
            for k in range(n):
                f.write(payload(base_ms + k * per, per, k))
                f.write("\n")
        jobs.append(Job(topic.format(device=device), path, n))
    return jobs


def run(
    port: int,
    jobs: Sequence[Job],
    inflight: int = 1000,
    host: str = "127.0.0.1",
    count_acks: bool = False,
) -> LoadResult:
    """Start every connection at once; wait until each has published and been acked."""
    binary = shutil.which("mosquitto_pub")
    if binary is None:
        raise RuntimeError("mosquitto_pub is not on PATH (Debian: mosquitto-clients)")
    acked = [0] * len(jobs)
    failed = [0]
    lock = threading.Lock()

    def one(i: int, job: Job) -> None:
        command = [binary, "-h", host, "-p", str(port), "-V", "5", "-q", "1",
                   "-M", str(inflight), "-i", f"loadgen-{job.lines.stem}",
                   "-t", job.topic, "-l"]  # fmt: skip
        if not count_acks:
            with job.lines.open("rb") as stdin:
                code = subprocess.run(
                    command, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    check=False,
                ).returncode  # fmt: skip
            with lock:
                acked[i] = job.messages if code == 0 else 0
                if code != 0:
                    failed[0] += 1
            return
        # grep counts the PUBACK lines, so no Python reads the debug output (it would take
        # the CPU the subscriber under test needs).
        with job.lines.open("rb") as stdin:
            pub = subprocess.Popen(
                [*command, "-d"],
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            grep = subprocess.Popen(
                ["grep", "-c", "received PUBACK"], stdin=pub.stdout, stdout=subprocess.PIPE
            )
            assert pub.stdout is not None
            pub.stdout.close()
            out, _ = grep.communicate()
            code = pub.wait()
        with lock:
            acked[i] = int(out.strip() or 0)
            if code != 0:
                failed[0] += 1

    threads = [threading.Thread(target=one, args=(i, j), daemon=True) for i, j in enumerate(jobs)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return LoadResult(
        sum(j.messages for j in jobs), sum(acked), time.perf_counter() - start, failed[0]
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--per", type=int, default=1, help="readings per message")
    ap.add_argument("--tag", default=f"lg{int(time.time()) % 100000}", help="device id prefix")
    ap.add_argument(
        "--count-acks", action="store_true", help="count each PUBACK from the debug output"
    )
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="offsite-loadgen-"))
    try:
        base = int(time.time() * 1000) - 3_600_000
        jobs = write_jobs(work, args.tag, args.connections, args.messages, args.per, base)
        r = run(args.port, jobs, host=args.host, count_acks=args.count_acks)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"{r.published:,} messages x {args.per} readings over {len(jobs)} connections:"
        f" {r.acked:,} acked by the broker in {r.seconds:.1f}s ({r.acked_per_s:,.0f} msg/s),"
        f" {r.failed} publishers failed"
    )
    return 0 if r.failed == 0 and r.acked == r.published else 1


if __name__ == "__main__":
    sys.exit(main())
