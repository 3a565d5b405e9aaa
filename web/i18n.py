"""Message catalogs (gettext via Babel), the request's language and local time formatting."""

from __future__ import annotations

import io
from datetime import datetime
from functools import cache
from importlib import resources
from zoneinfo import ZoneInfo

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from fastapi import Request

from core.clock import Clock as CoreClock
from core.clock import utc_now

LOCALES = ("zh_CN", "en")
COOKIE = "offsite_lang"
DOMAIN = "messages"


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "mark, translate later"
    """Marks a string for extraction; it is translated where it is shown."""
    return message


@cache
def translations(locale: str) -> Translations:
    """The compiled catalog of `locale`: the committed .po is compiled to .mo in memory."""
    po = resources.files("web") / "locale" / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=locale, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf, domain=DOMAIN)


def request_locale(request: Request, default: str) -> str:
    """`?lang=` wins (the switch sets the cookie), then the cookie, then the setting."""
    asked = request.query_params.get("lang") or request.cookies.get(COOKIE)
    return asked if asked in LOCALES else default


class Clock:
    """The workbench's time: now (injected, so tests can set it), and aware datetimes
    formatted in its zone, 24-hour."""

    def __init__(self, zone: str, now: CoreClock = utc_now) -> None:
        self.zone_name = zone
        self.zone = ZoneInfo(zone)
        self.now = now

    def local(self, t: datetime) -> datetime:
        return t.astimezone(self.zone)

    def full(self, t: datetime | None) -> str:
        return "" if t is None else self.local(t).strftime("%Y-%m-%d %H:%M:%S")

    def short(self, t: datetime | None) -> str:
        return "" if t is None else self.local(t).strftime("%m-%d %H:%M")

    def time(self, t: datetime | None) -> str:
        return "" if t is None else self.local(t).strftime("%H:%M:%S")

    def iso(self, t: datetime | None) -> str:
        return "" if t is None else self.local(t).isoformat(timespec="seconds")

    def offset(self, at: datetime) -> str:
        """'UTC+08:00' for the zone at `at`: shown beside times so nobody guesses the zone."""
        text = self.local(at).strftime("%z")
        return f"UTC{text[:3]}:{text[3:]}"
