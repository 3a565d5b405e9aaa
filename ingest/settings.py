"""Settings of the MQTT intake, payload validation, batch writer and readings storage."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class MqttSettings(BaseModel):
    """Where the broker is and how offsite holds its session there."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(
        default=None,
        description="mqtt://user:pass@host:port of the broker; unset starts an embedded one",
    )
    embedded: Literal["auto", "mosquitto", "python"] = Field(
        default="auto",
        description="with no url: which broker to start (auto = mosquitto if on PATH)",
    )
    protocol: Literal["5", "3.1.1"] = Field(
        default="5",
        description="MQTT version; 3.1.1 only for brokers without MQTT 5 (the pure-Python one)",
    )
    client_id: str = Field(
        default="offsite-ingest",
        description="fixed client id so the broker keeps our persistent session across restarts",
    )
    session_expiry_s: int = Field(
        default=7 * 24 * 3600,
        ge=0,
        description="MQTT 5 session expiry: how long the broker queues for us while we are away",
    )
    keepalive_s: int = Field(default=30, ge=5, le=3600, description="MQTT keepalive")
    shared_group: str | None = Field(
        default=None,
        description="subscribe through $share/<group>/... so several instances split the load"
        " (ingest.workers > 1 uses <client_id> when unset)",
    )
    worker_users: bool = Field(
        default=False,
        description="ingest worker <n> logs in as <user>-<n> (same password): for brokers"
        " that bind the client id to the login (Mosquitto use_username_as_clientid)",
    )
    receive_maximum: int = Field(
        default=65535,
        ge=1,
        le=65535,
        description="QoS 1 messages the broker may have in flight to us before our acks",
    )
    reconnect_min_s: float = Field(default=0.5, gt=0, description="first reconnect delay")
    reconnect_max_s: float = Field(default=30.0, gt=0, description="reconnect delay cap")


class IngestSettings(BaseModel):
    """Payload limits and the batch writer's shape."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("workers")
    @classmethod
    def _workers(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 1 <= value <= 256:
            raise ValueError("must be auto or a number of processes from 1 to 256")
        return value

    max_payload_bytes: int = Field(
        default=256 * 1024, ge=64, description="telemetry payloads above this are dead-lettered"
    )
    max_future_s: float = Field(
        default=300.0, ge=0, description="readings stamped further ahead than this are rejected"
    )
    dead_letter_payload_bytes: int = Field(
        default=8192, ge=0, description="raw payload bytes kept in a dead letter"
    )
    batch_max_readings: int = Field(
        default=5000, ge=1, description="a batch is written once it holds this many readings"
    )
    batch_max_wait_ms: int = Field(
        default=50, ge=1, description="or once its first message has waited this long"
    )
    queue_max_messages: int = Field(
        default=20000,
        ge=1,
        description=(
            "bounded queue between the MQTT thread and the writer; when full the MQTT thread "
            "blocks, the broker stops getting acks and holds the rest (back-pressure, no loss)"
        ),
    )
    workers: int | Literal["auto"] = Field(
        default="auto",
        description=(
            "ingest processes this `offsite run` starts, each an MQTT client in one $share"
            " group (client id <mqtt.client_id>-<n>); 1 = intake in this process; auto = one"
            " per core (1 while the engine takes readings in this process)"
        ),
    )
    retry_min_s: float = Field(default=0.2, gt=0, description="first retry delay on DB errors")
    retry_max_s: float = Field(default=5.0, gt=0, description="retry delay cap on DB errors")


class StorageSettings(BaseModel):
    """How readings are laid out in PostgreSQL or TimescaleDB."""

    model_config = ConfigDict(extra="forbid")

    chunk_interval: timedelta = Field(
        default=timedelta(days=1),
        description="hypertable chunk or native partition width",
    )
    partitions_ahead: int = Field(
        default=3, ge=1, description="native partitions created ahead of the current time"
    )
    retention: timedelta = Field(
        default=timedelta(days=365),
        description="readings older than this are dropped, and rejected on arrival",
    )
    compress_after: timedelta = Field(
        default=timedelta(days=7),
        description="TimescaleDB only: chunks older than this are compressed",
    )
    maintenance_interval_s: float = Field(
        default=3600.0, gt=0, description="how often partitions and retention are maintained"
    )
