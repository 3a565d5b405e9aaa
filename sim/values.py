"""Simulated device values: a daily cycle, slow drift, noise and breach episodes per device."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from sim.profiles import PROFILES, Metric, Profile

_TAU = 2 * math.pi
_MS_PER_HOUR = 3_600_000
# Spread of a breach level between readings: a breach is a level, not a flat line.
_BREACH_NOISE = 0.05


class DeviceSim:
    """One simulated device: values for a timestamp, with a breach state carried over time.

    The breach state is a two-state Markov chain whose stationary share of readings in
    breach is `breach_ratio`, with episodes of the profile's mean length, so rules with
    hold times and window means see real episodes rather than lone outliers.
    """

    def __init__(
        self,
        device_id: str,
        profile: Profile,
        rng: random.Random,
        breach_ratio: float,
        utc_offset_h: float,
        leader: DeviceSim | None = None,
    ) -> None:
        self.device_id = device_id
        self.profile = profile
        self.leader = leader
        self._rng = rng
        self._metrics = {m.name: m for m in profile.metrics}
        # How many of its values a breach episode moves out of range.
        self.breach_metrics = sum(m.breach is not None for m in profile.metrics)
        self._utc_offset_h = utc_offset_h
        self._phase = rng.uniform(0, _TAU)
        self._period_s = rng.uniform(600, 2400)
        self._breach_ratio = breach_ratio
        self._odds = breach_ratio / (1 - breach_ratio)
        self.in_breach = rng.random() < breach_ratio
        for m in profile.metrics:
            if m.follows is not None and (
                leader is None or m.follows.metric not in leader._metrics
            ):
                raise ValueError(
                    f"{device_id}: metric {m.name} follows {m.follows.prefix}.{m.follows.metric}"
                    " but no such leading device or metric exists"
                )

    def expected(self, metric: str, ts_ms: int) -> float:
        """The noise-free level of `metric` at `ts_ms` (what a follower tracks)."""
        m = self._metrics[metric]
        if m.follows is not None and self.leader is not None:
            return (
                m.follows.ratio * self.leader.expected(m.follows.metric, ts_ms) + m.follows.offset
            )
        hour = (ts_ms / _MS_PER_HOUR + self._utc_offset_h) % 24
        daily = 1 + m.swing * math.cos(_TAU * (hour - m.peak_hour) / 24)
        drift = 1 + m.wobble * math.sin(_TAU * ts_ms / 1000 / self._period_s + self._phase)
        return m.base * daily * drift

    def _step_breach(self, dt_s: float) -> None:
        if self._breach_ratio <= 0:
            self.in_breach = False
            return
        leave = min(1.0, dt_s / self.profile.episode_s)
        if self.in_breach:
            if self._rng.random() < leave:
                self.in_breach = False
        elif self._rng.random() < min(1.0, self._odds * leave):
            self.in_breach = True

    def _value(self, m: Metric, ts_ms: int) -> float:
        if self.in_breach and m.breach is not None:
            v = m.breach * (1 + self._rng.gauss(0, _BREACH_NOISE))
        else:
            centre = self.expected(m.name, ts_ms)
            v = centre + self._rng.gauss(0, m.noise * (m.base or centre))
        return round(min(m.high, max(m.low, v)), m.digits)

    def values(self, ts_ms: int, dt_s: float) -> tuple[dict[str, float], bool]:
        """The reading at `ts_ms`, `dt_s` after the previous one, and whether it is a breach."""
        self._step_breach(dt_s)
        return {m.name: self._value(m, ts_ms) for m in self.profile.metrics}, self.in_breach


def build_fleet(
    devices: int,
    *,
    seed: int,
    breach_ratio: float,
    utc_offset_h: float = 8.0,
    id_prefix: str = "",
    profiles: Sequence[Profile] = PROFILES,
) -> tuple[DeviceSim, ...]:
    """`devices` simulated devices, profiles taken in turn: aq-0001, ww-0001, tk-0001, ...

    Taking profiles in turn puts the k-th follower (tp-000k) after its leader (pp-000k).
    """
    built: dict[str, DeviceSim] = {}
    counts: dict[str, int] = {}
    for i in range(devices):
        profile = profiles[i % len(profiles)]
        n = counts[profile.prefix] = counts.get(profile.prefix, 0) + 1
        device_id = f"{id_prefix}{profile.prefix}-{n:04d}"
        leaders = {m.follows.prefix for m in profile.metrics if m.follows is not None}
        leader = None
        for prefix in leaders:
            leader = built.get(f"{id_prefix}{prefix}-{n:04d}")
        built[device_id] = DeviceSim(
            device_id,
            profile,
            random.Random(f"{seed}:{device_id}"),
            breach_ratio,
            utc_offset_h,
            leader,
        )
    return tuple(built.values())
