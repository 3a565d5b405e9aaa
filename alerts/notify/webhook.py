"""Signed webhook channel: JSON POST with an HMAC-SHA256 over `<timestamp>.<body>`."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import time
import urllib.error
import urllib.request

from alerts.audit import canonical_json
from alerts.notify.base import Notification, NotifyError
from alerts.settings import NotificationRoute

TIMESTAMP_HEADER = "X-Offsite-Timestamp"
SIGNATURE_HEADER = "X-Offsite-Signature"
DELIVERY_HEADER = "X-Offsite-Delivery"
EVENT_HEADER = "X-Offsite-Event"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value: `sha256=` and the hex HMAC of `<timestamp>.<body>`."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    now: float | None = None,
    tolerance_s: float = 300.0,
) -> bool:
    """What a receiver checks: the signature matches and the timestamp is recent."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookNotifier:
    """POSTs the notification's payload; any non-2xx answer or network error is a failure."""

    def __init__(self, route: NotificationRoute) -> None:
        if route.kind != "webhook" or not route.secret:
            raise ValueError(f"route {route.name!r} is not a signed webhook route")
        self.name = route.name
        self._url = route.url
        self._secret = route.secret
        self._timeout = route.timeout_s

    def send(self, notification: Notification) -> None:
        body = canonical_json(notification.payload).encode()
        timestamp = str(int(time.time()))
        request = urllib.request.Request(  # noqa: S310 - the route's url is checked to be http(s)
            self._url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "offsite-alerts",
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: sign(self._secret, timestamp, body),
                DELIVERY_HEADER: str(notification.outbox_id),
                EVENT_HEADER: notification.event,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                response.read()
        except urllib.error.HTTPError as err:
            err.close()  # the error holds the answer's socket open until it is closed
            raise NotifyError(f"webhook answered HTTP {err.code}") from err
        except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
            raise NotifyError(f"webhook unreachable: {err}") from err
