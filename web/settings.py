"""Settings of the workbench pages: language, time zone, map tiles, page size."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.clock import ZoneName


class WebSettings(BaseModel):
    """How the workbench shows things to officers."""

    model_config = ConfigDict(extra="forbid")

    default_locale: Literal["zh_CN", "en"] = Field(
        default="zh_CN", description="language before a person picks one"
    )
    timezone: ZoneName = Field(
        default="Asia/Shanghai", description="IANA zone every time is shown in"
    )
    tile_url: str = Field(
        default="",
        description="map tile URL template ({z}/{x}/{y}); empty draws the map without tiles, "
        "as on a network with no tile server",
    )
    tile_attribution: str = Field(default="", description="credit line of the tile server")
    page_size: int = Field(default=50, ge=10, le=500, description="rows per page in lists")
