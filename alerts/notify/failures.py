"""What a failed delivery's stored error means, as a stable kind the workbench labels.

The outbox stores the channel's own words in `outbox.last_error` (the raw text, kept for
whoever debugs the receiver); the texts below are the ones this package writes, so the
kind can be read back from them without a second column.
"""

from __future__ import annotations

import re
from enum import StrEnum


class FailureKind(StrEnum):
    HTTP_STATUS = "http_status"  # the receiver answered with an error status
    UNREACHABLE = "unreachable"  # no answer: refused, timed out, name unknown, TLS
    APPRISE_FAILED = "apprise_failed"  # an Apprise plugin raised
    APPRISE_REFUSED = "apprise_refused"  # Apprise says the service did not take it
    ROUTE_REMOVED = "route_removed"  # the route is no longer in the configuration
    CHANNEL_ERROR = "channel_error"  # a bug in a channel (logged with its traceback)
    OTHER = "other"


_PATTERNS: tuple[tuple[re.Pattern[str], FailureKind], ...] = (
    (re.compile(r"^webhook answered HTTP (?P<status>\d{3})"), FailureKind.HTTP_STATUS),
    (re.compile(r"^webhook unreachable: "), FailureKind.UNREACHABLE),
    (re.compile(r"^apprise failed: "), FailureKind.APPRISE_FAILED),
    (re.compile(r"^apprise reported a failed delivery"), FailureKind.APPRISE_REFUSED),
    (re.compile(r"^route '(?P<route>[^']*)' is no longer configured"), FailureKind.ROUTE_REMOVED),
    (re.compile(r"^channel error: "), FailureKind.CHANNEL_ERROR),
)


def classify(last_error: str) -> tuple[FailureKind, dict[str, str]]:
    """The kind of a stored delivery error and the values it names (an HTTP status)."""
    for pattern, kind in _PATTERNS:
        found = pattern.match(last_error)
        if found:
            return kind, {k: v for k, v in found.groupdict().items() if v is not None}
    return FailureKind.OTHER, {}
