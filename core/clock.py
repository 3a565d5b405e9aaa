"""What time it is: a clock is a function services are given, so tests can drive it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

Clock = Callable[[], datetime]

MaybeTime = TypeVar("MaybeTime", bound=datetime | None)

NAIVE = "must carry a UTC offset, e.g. 2026-11-26T08:00:00Z"


def utc_now() -> datetime:
    """The wall clock, the default of every service's `clock`."""
    return datetime.now(UTC)


def aware(t: MaybeTime, name: str, refuse: Callable[[str, str], Exception]) -> MaybeTime:
    """`t` unchanged when it carries an offset (or is None); else `refuse(name, why)` raised.

    A time without an offset would be read in the server's zone, silently hours off."""
    if t is not None and t.tzinfo is None:
        raise refuse(name, NAIVE)
    return t
