"""Schemathesis over the running server's OpenAPI with keys of three roles; prints the totals.

    OFFSITE_TEST_DATABASE_URL=postgresql://... python bench/schemathesis_probe.py [--max-examples N]

Starts `offsite run` on a fresh database and its own Mosquitto, creates a viewer, an officer
and an admin key of one department and one subject it supervises, then runs schemathesis
once per key with the checks that matter here: no server error, and every answer (status,
content type, body) documented in the schema. Exits 1 when any check failed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.auth import create_key
from bench._common import infrastructure, offsite_server

CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance"
)
PLANT = "91330100716105852F"


def run(schema_url: str, key: str, role: str, max_examples: int, work: Path) -> int:
    cmd = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        schema_url,
        "--checks",
        CHECKS,
        "--header",
        f"Authorization: Bearer {key}",
        "--max-examples",
        str(max_examples),
        "--phases",
        "examples,coverage,fuzzing",
        "--seed",
        "1",
        "--exclude-path",
        "/api/v1/stream",  # an endless event stream: schemathesis would wait on it
        "--request-timeout",
        "20",
        "--report",
        "junit",
        "--report-dir",
        str(work / f"report-{role}"),
    ]
    print(f"\n=== schemathesis as {role} ===", flush=True)
    # In the work folder: schemathesis keeps a cache in the current directory.
    return subprocess.run(cmd, check=False, cwd=work).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-examples", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="schemathesis-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)
        with (
            infrastructure(work, os.environ.get("OFFSITE_TEST_DATABASE_URL")) as infra,
            offsite_server(work, infra, "offsite-schemathesis") as server,
        ):
            base = f"http://127.0.0.1:{server.http_port}"
            with psycopg.connect(infra.db_url, autocommit=True) as conn:
                keys = {
                    role: create_key(conn, "EEB", role) for role in ("viewer", "officer", "admin")
                }
            httpx.post(
                f"{base}/api/v1/subjects",
                json={"credit_code": PLANT, "name": "示例化工有限公司"},
                headers={"Authorization": f"Bearer {keys['officer']}"},
                timeout=10,
            ).raise_for_status()
            started = time.monotonic()
            codes = {
                role: run(f"{base}/openapi.json", key, role, args.max_examples, work)
                for role, key in keys.items()
            }
            print(f"\nschemathesis exit codes: {codes} in {time.monotonic() - started:.0f} s")
            return 0 if all(c == 0 for c in codes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
