"""The CSRF token pages embed; the sign-in layer (api/auth) puts it on request.state."""

from __future__ import annotations

from fastapi import Request


def csrf_token(request: Request) -> str:
    """The session's token, or '' for a caller with no session (API-key requests are exempt)."""
    return str(getattr(request.state, "csrf_token", "") or "")
