"""Every rule of the sample pack in deploy/rules fires on suitable data (service + real DB)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from ingest.models import Reading
from rules.loader import load_directory
from tests.rules.conftest import Clock, ServiceFactory, store_readings
from tests.rules.support import DEPARTMENTS, MemoryDirectory, at, device
from video.models import Box, Detection

PACK = Path(__file__).parents[2] / "deploy" / "rules"
SUBJECT_A = "91310000MA1FL4CT3X"
SUBJECT_B = "91320000MA1FL4CT3Y"
SUBJECT_C = "91320900MA1FL4CT3W"


def directory() -> MemoryDirectory:
    return MemoryDirectory(
        [
            # GB 3095 area classes: a class 2 (grade II limits) and a class 1 station.
            device("air-1", "air_station", credit_code=SUBJECT_B, attributes={"air.area_class": 2}),
            device("air-2", "air_station", credit_code=SUBJECT_C, attributes={"air.area_class": 1}),
            # An HJ 212 logger at an outlet: COD (w01018) with the analyser's SampleTime.
            device("ww-3", "wastewater_outlet"),
            device(
                "ww-1",
                "wastewater_outlet",
                attributes={"permit.cod_mg_l": 50, "permit.nh3n_mg_l": 5},
            ),
            device("ww-2", "wastewater_outlet"),
            device("stack-1", "stack"),
            device("stack-2", "stack"),
            device(
                "tank-1",
                "tank",
                attributes={
                    "tank.max_temp_c": 60,
                    "tank.max_pressure_kpa": 200,
                    "tank.max_level_pct": 90,
                },
            ),
            device("gas-1", "gas_detector"),
            device("p-1", "production_power"),
            device("t-1", "treatment_power"),
            device("cam-1", "camera", industry="hazardous_chemicals", tags=["burning_watch"]),
        ]
    )


def scenario(at: Callable[[float], datetime] = at) -> list[Reading]:
    """Readings that breach every reading-driven sample rule; minute 0 is 12:00 local."""

    def minute_data(
        device_id: str, metric: str, start: int, end: int, value: float
    ) -> list[Reading]:
        return [Reading(at(m), device_id, metric, value) for m in range(start, end + 1)]

    data: list[Reading] = []
    # A polluted day at the air station, from local midnight (minute -720) to the next one.
    data += minute_data("air-1", "pm25", -720, 720, 120.0)
    data += minute_data("air-1", "pm10", -720, 720, 260.0)
    data += minute_data("air-2", "pm25", -720, 720, 40.0)  # above grade I 25, below II
    data += minute_data("air-2", "pm10", -720, 720, 80.0)  # above grade I 50, below II
    # HJ 212 real-time packets every 10 minutes; the analyser samples every 2 hours and
    # measures the same COD five times running (samples at -720, -600, ... -240).
    for m in range(-720, -199, 10):
        sample_time = at(-720 + (m + 720) // 120 * 120).timestamp()
        data.append(Reading(at(m), "ww-3", "w01018", 30.0))
        data.append(Reading(at(m), "ww-3", "w01018.sample_time", sample_time))
    # Wastewater: COD 120 against a permit of 50, frozen for over two hours; ammonia 8 vs 5.
    data += minute_data("ww-1", "cod", 0, 130, 120.0)
    data += minute_data("ww-1", "nh3n", 0, 130, 8.0)
    data.append(Reading(at(0), "ww-2", "cod", 20.0))  # then silent
    data += minute_data("stack-1", "so2", 0, 130, 35.0)
    data.append(Reading(at(0), "stack-2", "so2", 30.0))  # then silent in production hours
    base = at(10)
    for s in range(0, 121, 10):
        t = base + timedelta(seconds=s)
        data.append(Reading(t, "tank-1", "temperature", 70.0))
        data.append(Reading(t, "tank-1", "pressure", 250.0))
    for m in range(0, 6):
        data.append(Reading(at(20 + m), "tank-1", "level", 70.0 + 6 * m))
    data += [Reading(at(30), "gas-1", "lel", 30.0), Reading(at(31), "gas-1", "lel", 55.0)]
    for m in range(0, 13):
        data.append(Reading(at(40 + m), "p-1", "power", 80.0))
        data.append(Reading(at(40 + m), "t-1", "power", 1.0))
    return sorted(data, key=lambda r: r.time)


def detections() -> list[Detection]:
    def det(label: str, minute: float, zone: str | None = None) -> Detection:
        return Detection(
            "cam-1",
            label,
            0.9,
            Box(1, 1, 50, 50),
            zone,
            at(minute),
            f"{label}-1",
            5,
            f"sha256-{label}",
        )

    out = [det("smoke", m / 6) for m in range(0, 7)]  # every 10 s for a minute
    out += [det("fire", m / 6) for m in range(0, 7)]
    out += [det("tamper", m / 6) for m in range(0, 13)]
    out += [det("person", 660 + m / 6, "tank_farm") for m in range(0, 7)]  # 23:00 local
    return out


def test_every_sample_rule_fires(db: psycopg.Connection[Any], make_service: ServiceFactory) -> None:
    pack = load_directory(PACK, DEPARTMENTS)
    clock = Clock(at(-721).timestamp())
    svc = make_service(PACK, directory(), clock)
    data = scenario()
    for i in range(0, len(data), 1000):
        batch = data[i : i + 1000]
        store_readings(db, batch)
        svc.readings_committed(batch)
    svc.detections_observed(detections())
    assert svc.wait_idle(60)
    clock.now = at(131).timestamp()
    svc.tick_now()
    assert svc.wait_idle()
    fired = {r[0] for r in db.execute("SELECT DISTINCT rule_id FROM clues")}
    assert fired == {r.id for r in pack.rules}
    evidence = db.execute(
        "SELECT evidence_ids FROM clues WHERE rule_id = 'camera-tamper'"
    ).fetchone()
    assert evidence is not None
    assert evidence[0] == ["sha256-tamper"]  # 13 detections of one snapshot: listed once
