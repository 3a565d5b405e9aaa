"""Device profiles of the simulator as data: what each kind of device measures and how."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Follow:
    """A metric that tracks another device's metric at the same site (treatment follows
    production): value = ratio × the leader's value + offset."""

    prefix: str  # id prefix of the leading device; the k-th follower pairs with the k-th leader
    metric: str
    ratio: float
    offset: float


@dataclass(frozen=True, slots=True)
class Metric:
    """One measured quantity: a daily cycle around `base`, a slow wobble, sensor noise, and
    the level it jumps to during a breach episode."""

    name: str
    base: float  # daily mean, in the instrument's unit
    swing: float  # diurnal amplitude as a fraction of base
    peak_hour: float  # local hour of the daily maximum
    noise: float  # standard deviation as a fraction of base
    low: float  # what the instrument can report at least
    high: float  # and at most
    breach: float | None  # level during a breach episode; None: this metric does not breach
    digits: int  # decimals the instrument reports
    wobble: float = 0.06  # slow drift over tens of minutes, as a fraction of base
    follows: Follow | None = None


@dataclass(frozen=True, slots=True)
class Profile:
    """A kind of device: its id prefix, the role rules select it by, and what it measures."""

    kind: str
    prefix: str  # device ids are <prefix>-0001, <prefix>-0002, ...
    role: str  # the subjects package's device role the sample rules select on
    metrics: tuple[Metric, ...]
    # Mean length of a breach episode: long enough for the sample rules' hold times and
    # window means to see it (`for: 10m` on the power rule, hourly means for air).
    episode_s: float


# Breach levels sit beyond the limits of the sample rules in deploy/rules (GB 3095-2012
# grade II for air, permit-style limits for wastewater, GB/T 50493-2019 alarm levels for gas,
# "treatment below 5 kW while production above 30 kW" for power).
PROFILES: tuple[Profile, ...] = (
    Profile(
        kind="air_quality_station",
        prefix="aq",
        role="air_station",
        episode_s=1800,
        metrics=(
            # μg/m³ except co (mg/m³); particulates peak with the morning traffic, ozone in
            # the afternoon sun, NO2 with the evening rush.
            Metric("pm25", 38, 0.35, 7, 0.12, 1, 1000, 160, 1),
            Metric("pm10", 72, 0.30, 8, 0.12, 2, 2000, 290, 1),
            Metric("so2", 9, 0.25, 10, 0.15, 0, 500, None, 1),
            Metric("no2", 32, 0.35, 19, 0.15, 0, 500, None, 1),
            Metric("o3", 70, 0.60, 15, 0.12, 0, 600, 230, 1),
            Metric("co", 0.8, 0.30, 8, 0.15, 0.05, 30, None, 2),
        ),
    ),
    Profile(
        kind="wastewater_outlet",
        prefix="ww",
        role="wastewater_outlet",
        episode_s=1800,
        metrics=(
            # mg/L, pH, m³/h; load follows the day shift.
            Metric("cod", 28, 0.20, 14, 0.10, 1, 2000, 130, 1),
            Metric("nh3n", 2.2, 0.20, 14, 0.12, 0.05, 200, 14, 2),
            Metric("ph", 7.3, 0.02, 14, 0.015, 0, 14, 10.8, 2),
            Metric("flow", 42, 0.40, 11, 0.08, 0, 1000, None, 1),
        ),
    ),
    Profile(
        kind="chemical_tank",
        prefix="tk",
        role="tank",
        episode_s=120,
        metrics=(
            # °C, kPa, % of height; temperature follows the sun, the level the shift.
            Metric("temperature", 24, 0.15, 15, 0.02, -40, 200, 62, 1),
            Metric("pressure", 118, 0.03, 15, 0.01, 0, 2000, 265, 1),
            Metric("level", 62, 0.10, 20, 0.005, 0, 100, 96, 1),
        ),
    ),
    Profile(
        kind="production_power_meter",
        prefix="pp",
        role="production_power",
        episode_s=1800,
        metrics=(
            # kW; the line runs around the clock, harder in the day shift, never below ~100.
            Metric("power", 180, 0.35, 14, 0.04, 0, 5000, None, 1),
        ),
    ),
    Profile(
        kind="treatment_power_meter",
        prefix="tp",
        role="treatment_power",
        episode_s=1200,
        metrics=(
            # kW; the treatment plant draws about a third of production. A breach is the
            # plant switched off while production runs: standby draw only.
            Metric(
                name="power",
                base=0,
                swing=0,
                peak_hour=0,
                noise=0.05,
                low=0,
                high=5000,
                breach=0.6,
                digits=1,
                wobble=0,
                follows=Follow("pp", "power", ratio=0.3, offset=3.0),
            ),
        ),
    ),
    Profile(
        kind="combustible_gas_detector",
        prefix="gd",
        role="gas_detector",
        episode_s=60,
        metrics=(
            # %LEL; background near zero, a leak crosses the 25 %LEL first alarm level.
            Metric("lel", 1.5, 0.30, 14, 0.30, 0, 100, 38, 1, wobble=0.2),
        ),
    ),
)


@dataclass(frozen=True, slots=True)
class CameraScript:
    """What a simulated camera shows; events start after the given seconds of its run."""

    movers: int
    flame_from_s: float | None = None
    smoke_from_s: float | None = None
    cover_after_s: float | None = None


# Camera k shows script k modulo the length. Events only play when breaches are asked for
# (--breach-ratio > 0); otherwise every camera shows people walking and nothing else.
CAMERA_SCRIPTS: tuple[CameraScript, ...] = (
    CameraScript(movers=2),
    CameraScript(movers=1, flame_from_s=20),
    CameraScript(movers=1, smoke_from_s=15),
    CameraScript(movers=2, cover_after_s=60),
)
CAMERA_PREFIX = "cam"
