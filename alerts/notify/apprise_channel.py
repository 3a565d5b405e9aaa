"""Apprise channel: one Apprise URL (DingTalk, WeCom, email, JSON and the rest it supports)."""

from __future__ import annotations

from typing import Any

from alerts.notify.base import Notification, NotifyError
from alerts.settings import NotificationRoute


class AppriseNotifier:
    """Sends title and body through Apprise; Apprise reports only success or failure."""

    def __init__(self, route: NotificationRoute) -> None:
        import apprise

        self.name = route.name
        self._apprise: Any = apprise.Apprise()
        if not self._apprise.add(route.url):
            raise ValueError(f"route {route.name!r}: Apprise does not understand its url")

    def send(self, notification: Notification) -> None:
        try:
            ok = self._apprise.notify(title=notification.title, body=notification.body)
        except Exception as err:  # Apprise plugins raise whatever their libraries raise
            raise NotifyError(f"apprise failed: {err}") from err
        if not ok:
            raise NotifyError("apprise reported a failed delivery")
