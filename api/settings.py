"""Settings of the HTTP server."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class HttpSettings(BaseModel):
    """Where the HTTP API listens."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(default="127.0.0.1", description="bind address")
    port: int = Field(default=8080, ge=0, le=65535, description="bind port (0 picks a free one)")
