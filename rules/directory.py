"""A DeviceDirectory that knows no bindings, for running without the subject library."""

from __future__ import annotations

from subjects.models import DeviceContext


class UnboundDirectory:
    """Every device is unbound: only rules whose selector names no subject field apply."""

    def context(self, device_id: str) -> DeviceContext | None:
        return None
