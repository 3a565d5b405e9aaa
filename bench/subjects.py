"""Subject library benchmark: directory lookups per second, reload times, import throughput.

    python bench/subjects.py [--database-url URL] [--subjects N] [--import-rows N]

Prints, in one run: the raw rate of a plain dict lookup (the machine's ceiling for a cached
lookup) next to SubjectDirectory.context(); full and per-edit reload times of the cache for
a library of N subjects with two devices each and a third of them cross-department; the
latency of a binding edit until the cache answers with it; and CSV import rows/s (dry run
and committed, one transaction).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.principal import Principal, Role
from offsite.embedded import EmbeddedPostgres
from offsite.migrations import prepare_database
from offsite.settings import load_settings
from subjects.credit_code import make
from subjects.importer import ImportFormat
from subjects.schema import BindingIn
from subjects.service import SubjectsService
from subjects.settings import SubjectsSettings

DEPTS = ["EEB", "HLT", "AMR", "EMB"]
ADMIN = Principal("bench", "EEB", Role.PLATFORM_ADMIN)


def code(i: int) -> str:
    return make("9", "1", "330100", f"{i:08d}")


def seed(url: str, n: int) -> None:
    """n subjects, two bound devices each, every third one also supervised by HLT."""
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        codes = [code(i) for i in range(n)]
        with cur.copy(
            "COPY subjects (credit_code, name, grid, industry, credit_grade) FROM STDIN"
        ) as cp:
            for i, c in enumerate(codes):
                cp.write_row((c, f"subject {i}", f"G{i % 50}", "chemicals", "ABCD"[i % 4]))
        with cur.copy("COPY subject_departments (credit_code, department) FROM STDIN") as cp:
            for i, c in enumerate(codes):
                cp.write_row((c, "EEB"))
                if i % 3 == 0:
                    cp.write_row((c, "HLT"))
        with cur.copy("COPY device_bindings (device_id, credit_code, role) FROM STDIN") as cp:
            for i, c in enumerate(codes):
                cp.write_row((f"d{i}-ww", c, "wastewater_outlet"))
                cp.write_row((f"d{i}-cam", c, "camera"))


def lookup_rates(svc: SubjectsService, n: int) -> tuple[float, float]:
    """Best of several interleaved rounds, so both see the same machine load."""
    ids = [f"d{i % n}-ww" for i in range(100_000)] + ["unbound"] * 10_000
    plain = dict(svc.directory.bound_devices()).get
    ours = svc.directory.context
    best = [0.0, 0.0]
    for _ in range(7):
        for k, f in enumerate((plain, ours)):
            started = time.perf_counter()
            for d in ids:
                f(d)
            best[k] = max(best[k], len(ids) / (time.perf_counter() - started))
    return best[0], best[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url")
    parser.add_argument("--subjects", type=int, default=20_000)
    parser.add_argument("--import-rows", type=int, default=10_000)
    args = parser.parse_args()

    pg: EmbeddedPostgres | None = None
    url = args.database_url
    tmp = tempfile.mkdtemp(prefix="bench-subjects-")
    if url is None:
        pg = EmbeddedPostgres(Path(tmp) / "pg", durable=False)
        pg.start()
        admin_url = pg.url
        name = f"bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        info = psycopg.conninfo.conninfo_to_dict(admin_url)
        info["dbname"] = name
        url = psycopg.conninfo.make_conninfo(**info)
    try:
        with psycopg.connect(url) as conn:
            prepare_database(conn, load_settings(config_file=None))
        n = args.subjects
        seed(url, n)
        pool = ConnectionPool(url, min_size=2, max_size=4, open=True)
        svc = SubjectsService(SubjectsSettings(listen=False), pool, CollectorRegistry())
        svc.start()

        full = []
        for _ in range(5):
            started = time.perf_counter()
            svc.directory.refresh()
            full.append(time.perf_counter() - started)
        cross = sum(1 for s in svc.directory.subjects_of("EEB") if s.cross_department)
        print(f"library: {n} subjects, {2 * n} bindings, {cross} cross-department")
        print(f"full reload of the cache: median {statistics.median(full) * 1000:.0f} ms")

        raw, ctx = lookup_rates(svc, n)
        print(
            f"lookups/s: plain dict.get {raw / 1e6:.1f} M (machine ceiling), "
            f"SubjectDirectory.context {ctx / 1e6:.1f} M ({ctx / raw:.0%} of it)"
        )

        edits = []
        for i in range(200):
            started = time.perf_counter()
            svc.repository.bind(
                f"d{i}-ww", BindingIn(credit_code=code(i), role="stack", point=f"P{i}"), ADMIN
            )
            ctx_ = svc.directory.context(f"d{i}-ww")
            assert ctx_ is not None
            assert ctx_.role == "stack"
            edits.append(time.perf_counter() - started)
        edits.sort()
        p50, p99 = edits[len(edits) // 2] * 1000, edits[int(len(edits) * 0.99)] * 1000
        print(
            f"binding edit committed and visible in the cache: p50 {p50:.1f} ms, p99 {p99:.1f} ms"
        )

        rows = args.import_rows
        lines = [
            "credit_code,name,grid,industry,credit_grade,tags,departments,attr.permit.cod_mg_l"
        ]
        for i in range(n, n + rows):
            lines.append(
                f"{code(i)},imported {i},G{i % 50},textiles,{'ABCD'[i % 4]},key;new,EEB,50"
            )
        body = ("\n".join(lines) + "\n").encode()
        for dry in (True, False):
            started = time.perf_counter()
            report = svc.importer.run(body, ImportFormat.CSV, ADMIN, dry_run=dry)
            took = time.perf_counter() - started
            assert not report.errors, report.errors[:3]
            what = "dry run" if dry else "committed"
            print(
                f"CSV import of {rows} new subjects ({len(body) / 1e6:.1f} MB), {what}: "
                f"{took:.2f} s = {rows / took:,.0f} rows/s"
            )
        last = code(n + rows - 1)
        while svc.directory.subject(last) is None:
            time.sleep(0.01)
        print(f"  ... and in the directory cache {time.perf_counter() - started:.2f} s after start")
        svc.stop()
        pool.close()
    finally:
        if pg is not None:
            pg.stop()


if __name__ == "__main__":
    main()
