"""Publish->clue latency end to end: `offsite run` at 2,000 msg/s with 1% of readings breaching.

Run: .venv/bin/python bench/rules_e2e.py [--rate 2000] [--seconds 20]
(or bench/rules.py --e2e). Starts an embedded PostgreSQL and Mosquitto and the server as a
subprocess, publishes QoS 1 telemetry stamped with the publish time, and reports the
latency from publish to the clue's commit: exactly per clue from the database
(clues.created_at - started_at, where started_at is the breaching reading's device time =
its publish time) and from the server's histogram offsite_rules_clue_latency_seconds.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _common as common

DEVICES = 1000


def run_e2e(rate: float = 2000.0, seconds: float = 20.0) -> None:
    work = Path(tempfile.mkdtemp(prefix="offsite-bench-rules-"))
    rules_dir = work / "rules"
    rules_dir.mkdir()
    pack = Path(__file__).resolve().parents[1] / "deploy" / "rules"
    for f in pack.glob("*.yaml"):
        shutil.copy(f, rules_dir / f.name)
    (rules_dir / "bench.yaml").write_text(common.PM25_RULE, encoding="utf-8")
    try:
        with (
            common.infrastructure(work) as infra,
            common.offsite_server(
                work, infra, "offsite-bench-rules", {"OFFSITE_RULES__DIRECTORY": str(rules_dir)}
            ) as srv,
        ):
            broker, db_url, metrics_url = infra.broker, infra.db_url, srv.metrics_url
            n = int(rate * seconds)
            # Each breach is one clue episode (opened, then resolved).
            items, breaches = common.pm25_stream(n, "rb", DEVICES)
            before = common.scrape(metrics_url)
            proc, _ = common.start_publisher(broker.port, items, rate=rate, stamp=True)
            proc.join(seconds + 120)
            with psycopg.connect(db_url, autocommit=True) as conn:
                deadline = time.monotonic() + 60
                clues = 0
                while time.monotonic() < deadline:
                    row = conn.execute(
                        "SELECT count(*) FROM clues WHERE rule_id = 'bench-pm25-high'"
                    ).fetchone()
                    clues = int(row[0]) if row else 0
                    if clues >= breaches:
                        break
                    time.sleep(0.2)
                row = conn.execute(
                    "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x),"
                    " percentile_cont(0.99) WITHIN GROUP (ORDER BY x), max(x) FROM ("
                    " SELECT extract(epoch FROM created_at - started_at) AS x FROM clues"
                    " WHERE rule_id = 'bench-pm25-high') q"
                ).fetchone()
            after = common.scrape(metrics_url)
            name = "offsite_rules_clue_latency_seconds"
            h50 = common.histogram_quantile(before, after, name, 0.5)
            h99 = common.histogram_quantile(before, after, name, 0.99)
            assert row is not None
            p50, p99, worst = (float(x) if x is not None else float("nan") for x in row)
            print(
                f"\n== publish -> clue end to end at {rate:,.0f} msg/s for {seconds:.0f} s "
                f"(QoS 1, {breaches} breaching readings, {clues} clues opened)"
            )
            print(
                f"per clue from the database: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
                f"max {worst * 1000:.0f} ms (target p99 <= 250 ms)"
            )
            print(
                f"server histogram (interpolated): p50 {h50 * 1000:.0f} ms, p99 {h99 * 1000:.0f} ms"
            )
            lag = common.histogram_quantile(
                before, after, "offsite_rules_evaluation_lag_seconds", 0.99
            )
            print(
                "evaluation lag p99 (wall clock - newest event time of a batch): "
                f"{lag * 1000:.0f} ms"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    return common.rate_main(__doc__ or "", run_e2e, 2000.0)


if __name__ == "__main__":
    raise SystemExit(main())
