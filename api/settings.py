"""Settings of the HTTP server and of sign-in."""

from __future__ import annotations

from datetime import timedelta

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


class OidcSettings(BaseModel):
    """Single sign-on through an OpenID Connect provider (authorization code with PKCE)."""

    model_config = ConfigDict(extra="forbid")

    issuer: str = Field(description="the provider's issuer URL; discovery is read from it")
    client_id: str = Field(description="this site's client id at the provider")
    client_secret: str = Field(default="", description="client secret (empty: a public client)")
    button_label: str = Field(default="统一身份认证登录", description="the sign-in button's text")
    scope: str = Field(default="openid profile email", description="scopes asked for")
    login_claim: str = Field(default="preferred_username", description="claim naming the login")
    name_claim: str = Field(default="name", description="claim with the display name")
    department_claim: str = Field(default="department", description="claim naming the department")
    role_claim: str = Field(default="role", description="claim naming the role")
    departments: dict[str, str] = Field(
        default_factory=dict,
        description="claim value → department code; a value not listed is used as the code",
    )
    roles: dict[str, str] = Field(
        default_factory=dict,
        description="claim value → role (viewer, officer, admin, platform_admin); a value not "
        "listed is used as the role; a person without a valid role is refused",
    )


class AuthSettings(BaseModel):
    """Sign-in, sessions and their limits."""

    model_config = ConfigDict(extra="forbid")

    https: bool = Field(
        default=False, description="the site is served over https: cookies are marked Secure"
    )
    session_idle: timedelta = Field(
        default=timedelta(hours=2), description="a session unused this long ends"
    )
    session_absolute: timedelta = Field(
        default=timedelta(hours=12), description="a session ends this long after sign-in"
    )
    login_max_failures: int = Field(
        default=5, ge=1, description="failed sign-ins per login, and per address, in the window"
    )
    login_window: timedelta = Field(
        default=timedelta(minutes=5), description="the window failed sign-ins are counted in"
    )
    stream_recheck_s: float = Field(
        default=2.0, gt=0, description="how often an open live stream re-checks its caller"
    )
    first_run_admin: bool = Field(
        default=True,
        description="with no accounts at all, create the platform admin 'admin' at start and "
        "print its password once",
    )
    oidc: OidcSettings | None = Field(default=None, description="single sign-on; unset: off")
