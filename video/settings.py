"""Settings of frame intake, detectors and evidence storage."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class VideoSettings(BaseModel):
    """Cameras, detectors and where evidence is kept."""

    model_config = ConfigDict(extra="forbid")
