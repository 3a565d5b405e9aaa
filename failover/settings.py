"""Settings of the engine election and of the engine's own broker subscription."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class EngineSettings(BaseModel):
    """How engines elect the active one and how it reads the devices' streams."""

    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(
        default="offsite-engine",
        description="the engines' shared MQTT client id: whichever is active holds the"
        " persistent session under it, so a standby that takes over gets the unacknowledged rest",
    )
    broker_url: str | None = Field(
        default=None,
        description="mqtt:// URL (and login) of the engine's subscription; unset: mqtt.url",
    )
    lock_key: int = Field(
        default=0x0E791E0, description="the PostgreSQL advisory lock key the engines share"
    )
    poll_s: float = Field(
        default=1.0, gt=0, le=30, description="how often a standby tries to take the lock"
    )
    check_s: float = Field(
        default=1.0, gt=0, le=30, description="how often the active engine checks it holds it"
    )
    lease_timeout_s: float = Field(
        default=6.0,
        gt=0,
        description="the active engine exits when it could not confirm its lock for this long"
        " (the server drops a silent session after about the same time: keepalives below)",
    )
    server_keepalive_s: int = Field(
        default=2,
        ge=1,
        description="TCP keepalive idle and interval the server uses on the lock's session"
        " (3 probes): a dead engine host releases the lock within about 3 x this + idle",
    )
    takeover_target_s: float = Field(
        default=10.0, gt=0, description="a takeover slower than this is logged as a warning"
    )
    repair_window_s: float = Field(
        default=15.0,
        ge=0,
        description="for this long after each (re)connect of the engine's subscription, and"
        " for readings it received this long before a disconnect, the engine also stores the"
        " readings it sees that ingest did not (a broker restart's shared-subscription gap;"
        " failover/repair.py); 0 turns it off",
    )
