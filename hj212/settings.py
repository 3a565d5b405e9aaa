"""Settings of the HJ 212 gateway."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from core.clock import ZoneName


class Hj212Settings(BaseModel):
    """Where data loggers connect and how their packets are judged."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="run the TCP gateway and the MQTT topic")
    host: str = Field(default="127.0.0.1", description="bind address (0.0.0.0 for loggers)")
    port: int = Field(
        default=0, ge=0, le=65535, description="TCP port loggers connect to (0 picks a free one)"
    )
    timezone: ZoneName = Field(
        default="Asia/Shanghai", description="zone of DataTime, which carries no offset"
    )
    require_registration: bool = Field(
        default=False,
        description=(
            "refuse MNs not registered with `offsite hj212 register`; when false an unknown MN "
            "registers itself with the password of its first packet"
        ),
    )
    max_frame_bytes: int = Field(
        default=16384, ge=128, description="a frame longer than this without CRLF is dropped"
    )
    max_connections: int = Field(
        default=20000, ge=1, description="connections beyond this are closed on accept"
    )
    idle_timeout_s: float = Field(
        default=900.0, gt=0, description="a connection silent this long is closed"
    )
    split_timeout_s: float = Field(
        default=60.0, gt=0, description="pieces of a split packet wait this long for the rest"
    )
    max_pending_splits: int = Field(
        default=16, ge=1, description="split packets waiting per connection or device"
    )
