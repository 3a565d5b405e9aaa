"""A stored delivery error is read back as the kind the workbench labels: the real webhook
channel's failures (a refused connection, an error status) and the outbox's own words."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from alerts.notify.base import Notification, NotifyError
from alerts.notify.failures import FailureKind, classify
from alerts.notify.webhook import WebhookNotifier
from alerts.settings import NotificationRoute


class _Answers503(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(503)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def down() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers503)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


def _error(url: str) -> str:
    route = NotificationRoute(name="hook", kind="webhook", url=url, secret="s", timeout_s=2)
    note = Notification(1, "hook", "opened", {"alert": {"id": 1}}, datetime.now(UTC))
    with pytest.raises(NotifyError) as raised:
        WebhookNotifier(route).send(note)
    return str(raised.value)


def test_the_webhooks_own_failures_are_classified(down: str) -> None:
    assert classify(_error(down)) == (FailureKind.HTTP_STATUS, {"status": "503"})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    assert classify(_error(f"http://127.0.0.1:{closed}/hook"))[0] is FailureKind.UNREACHABLE


def test_the_outboxs_words_and_unknown_text() -> None:
    assert classify("route 'emb-hook' is no longer configured") == (
        FailureKind.ROUTE_REMOVED,
        {"route": "emb-hook"},
    )
    assert classify("channel error: KeyError('x')")[0] is FailureKind.CHANNEL_ERROR
    assert classify("apprise reported a failed delivery")[0] is FailureKind.APPRISE_REFUSED
    assert classify("something else entirely") == (FailureKind.OTHER, {})
