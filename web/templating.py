"""Jinja2 environments (one per language, catalogs installed) and the page renderer."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from api.auth import Caller, Role
from core.clock import Clock as CoreClock
from core.clock import utc_now
from web import labels
from web.csrf import csrf_token
from web.departments import DepartmentNames
from web.i18n import COOKIE, LOCALES, N_, Clock, request_locale, translations
from web.people import People
from web.settings import WebSettings

NAV = (
    ("board", "/", N_("Alerts")),
    ("tasks", "/tasks", N_("Tasks")),
    ("subjects", "/subjects", N_("Subject files")),
    ("devices", "/devices", N_("Devices")),
    ("map", "/map", N_("Map")),
    ("rules", "/rules", N_("Rules")),
    ("draws", "/draws", N_("Draws")),
    ("silences", "/silences", N_("Silences")),
    ("notifications", "/notifications", N_("Notifications")),
    ("audit", "/audit", N_("Audit")),
)


class Pages:
    """Renders templates in the caller's language with the helpers every page uses."""

    def __init__(
        self, settings: WebSettings, departments: DepartmentNames, now: CoreClock = utc_now
    ) -> None:
        self.settings = settings
        self.clock = Clock(settings.timezone, now)
        self.departments = departments

    @cached_property
    def _envs(self) -> dict[str, Environment]:
        envs = {}
        for locale in LOCALES:
            env = Environment(
                loader=PackageLoader("web", "templates"),
                autoescape=select_autoescape(["html"]),
                extensions=["jinja2.ext.i18n"],
                undefined=StrictUndefined,
                trim_blocks=True,
                lstrip_blocks=True,
            )
            env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
            envs[locale] = env
        return envs

    def gettext(self, locale: str) -> Any:
        return translations(locale).gettext

    def render(
        self,
        request: Request,
        template: str,
        caller: Caller | None,
        status_code: int = 200,
        **values: Any,
    ) -> HTMLResponse:
        locale = request_locale(request, self.settings.default_locale)
        gettext = translations(locale).gettext
        now = self.clock.now()
        page = (
            self._envs[locale]
            .get_template(template)
            .render(
                request=request,
                caller=caller,
                may_act=caller is not None and caller.role.rank >= Role.OFFICER.rank,
                is_admin=caller is not None and caller.role is Role.ADMIN,
                locale=locale,
                html_lang="zh-CN" if locale == "zh_CN" else "en",
                csrf_token=csrf_token(request),
                clock=self.clock,
                zone=f"{self.clock.zone_name} ({self.clock.offset(now)})",
                now=now,
                label=labels.labeller(gettext),
                describe=labels.formatter(gettext),
                # Data (rule titles, legal texts, industries) is looked up without %-formatting.
                tr=gettext,
                nav=NAV,
                settings=self.settings,
                departments=self.departments,
                people=People(self.departments.pool, gettext),
                **{"active": "", **values},
            )
        )
        response = HTMLResponse(page, status_code=status_code)
        response.headers["Cache-Control"] = "no-store"
        if request.query_params.get("lang") in LOCALES:
            response.set_cookie(COOKIE, locale, max_age=365 * 86400, samesite="lax")
        return response
