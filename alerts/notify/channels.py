"""Builds one Notifier per configured route."""

from __future__ import annotations

from collections.abc import Sequence

from alerts.notify.apprise_channel import AppriseNotifier
from alerts.notify.base import Notifier
from alerts.notify.webhook import WebhookNotifier
from alerts.settings import NotificationRoute


def build_notifiers(routes: Sequence[NotificationRoute]) -> dict[str, Notifier]:
    """A route name -> channel map; raises ValueError naming a route that cannot be built."""
    notifiers: dict[str, Notifier] = {}
    for route in routes:
        notifiers[route.name] = (
            WebhookNotifier(route) if route.kind == "webhook" else AppriseNotifier(route)
        )
    return notifiers
