"""Settings of the HTTP server."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class HttpSettings(BaseModel):
    """Where the HTTP API listens."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(default="127.0.0.1", description="bind address")
    port: int = Field(default=8080, ge=0, le=65535, description="bind port (0 picks a free one)")
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="largest request body accepted (413 beyond); the subject import has its own"
        " limit, subjects.import_max_bytes",
    )
