"""Settings of alerting, dispatch and notifications."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class AlertsSettings(BaseModel):
    """Alert grouping, dispatch policy and notification channels."""

    model_config = ConfigDict(extra="forbid")
