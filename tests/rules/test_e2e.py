"""End to end: telemetry published through the broker becomes clue rows, for the sample pack."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import psycopg

from offsite.app import OffsiteApp
from offsite.embedded import EmbeddedBroker
from rules.loader import load_directory
from tests.helpers import Publisher, wait_until
from tests.rules.support import DEPARTMENTS
from tests.rules.test_sample_pack import PACK, directory, scenario

# Detection rules are fed by the video pipeline (tested in test_sample_pack through the
# service); the production-hours absence rule depends on the wall clock's local hour.
NOT_BY_TELEMETRY = {
    "open-burning-smoke",
    "site-fire",
    "person-in-tank-farm-at-night",
    "camera-tamper",
    "stack-monitor-offline-production-hours",
}


def seed_subjects(db: psycopg.Connection[Any]) -> None:
    """The sample devices as rows of the subject library (what the real directory reads)."""
    contexts = list(directory().contexts.values())
    subjects: dict[str, dict[str, Any]] = defaultdict(dict)
    for c in contexts:
        subjects[c.credit_code].update(c.attributes)
    for code, attributes in subjects.items():
        db.execute(
            "INSERT INTO subjects (credit_code, name, industry, grid, attributes)"
            " VALUES (%s, %s, 'chemicals', 'G1', %s::jsonb)",
            (code, f"subject {code}", json.dumps(attributes)),
        )
        db.execute(
            "INSERT INTO subject_departments (credit_code, department) VALUES (%s, 'EEB'),"
            " (%s, 'EMB')",
            (code, code),
        )
    for c in contexts:
        db.execute(
            "INSERT INTO device_bindings (device_id, credit_code, role) VALUES (%s, %s, %s)",
            (c.device_id, c.credit_code, c.role),
        )


def test_published_telemetry_raises_each_sample_rule(
    make_settings: Callable[..., Any], broker: EmbeddedBroker, db: psycopg.Connection[Any]
) -> None:
    seed_subjects(db)
    expected = {r.id for r in load_directory(PACK, DEPARTMENTS).rules} - NOT_BY_TELEMETRY
    # Devices publish as they measure: messages in time order, consecutive readings of one
    # device batched (a composite rule compares devices within the allowed lateness).
    messages: list[tuple[str, list[dict[str, Any]]]] = []
    for r in scenario():
        entry = {"ts": int(r.time.timestamp() * 1000), "values": {r.metric: r.value}}
        if messages and messages[-1][0] == r.device_id and len(messages[-1][1]) < 200:
            messages[-1][1].append(entry)
        else:
            messages.append((r.device_id, [entry]))
    with OffsiteApp(make_settings(rules={"directory": str(PACK)})) as app:
        wait_until(lambda: app.readiness()["broker"], what="broker connection")
        pub = Publisher(broker.port)
        try:
            for device_id, entries in messages:
                pub.publish(f"offsite/v1/devices/{device_id}/telemetry", json.dumps(entries))
            pub.wait_acked(len(messages))

            def fired() -> set[str]:
                return {r[0] for r in db.execute("SELECT DISTINCT rule_id FROM clues")}

            wait_until(lambda: fired() >= expected, timeout=60, what=f"clues of {expected}")
        finally:
            pub.close()
    # Nothing else fires; the production-hours absence may, depending on the local hour now.
    assert fired() - expected <= {"stack-monitor-offline-production-hours"}
