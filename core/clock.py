"""What time it is: a clock is a function services are given, so tests can drive it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator

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


def zone_named(name: str) -> ZoneInfo:
    """The IANA time zone `name`; ValueError naming it when there is none such."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(f"unknown time zone {name!r}: not an IANA time zone name") from err


def _known_zone(name: str) -> str:
    zone_named(name)
    return name


# A settings or rule field naming a time zone, checked when it is read.
ZoneName = Annotated[str, AfterValidator(_known_zone)]
