"""Settings of the subject library: directory cache refresh and bulk import limits."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SubjectsSettings(BaseModel):
    """How the device directory stays current and how large an import may be."""

    model_config = ConfigDict(extra="forbid")

    refresh_interval_s: float = Field(
        default=300.0,
        gt=0,
        description="full reload of the directory cache at least this often (safety net; "
        "edits in this process and NOTIFYs from other instances refresh it at once)",
    )
    listen: bool = Field(
        default=True,
        description="LISTEN for changes committed by other instances and refresh at once",
    )
    import_max_rows: int = Field(default=50_000, ge=1, description="rows one bulk import may hold")
    import_max_bytes: int = Field(
        default=32 * 1024 * 1024, ge=1024, description="bytes one bulk import body may hold"
    )
