"""The one settings object: env (OFFSITE_ prefix, `__` nesting) over an optional YAML file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from alerts.settings import AlertsSettings
from api.settings import AuthSettings, HttpSettings
from failover.settings import EngineSettings
from hj212.settings import Hj212Settings
from ingest.settings import IngestSettings, MqttSettings, StorageSettings
from roles.plan import ALL_ROLES, Role, parse_roles
from rules.settings import RulesSettings
from subjects.departments import load_departments
from subjects.settings import SubjectsSettings
from video.settings import VideoSettings
from web.settings import WebSettings


class DatabaseSettings(BaseModel):
    """The PostgreSQL (or TimescaleDB) server and the connection pool."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(
        default=None,
        description="postgresql://... ; unset starts an embedded PostgreSQL under state_dir",
    )
    pool_min: int = Field(default=2, ge=1, description="connections kept open")
    pool_max: int = Field(default=12, ge=1, description="connections at most")
    connect_timeout_s: float = Field(default=5.0, gt=0, description="per connection attempt")
    start_timeout_s: float = Field(
        default=120.0,
        gt=0,
        description="`offsite run` gives up starting when the database has not answered by"
        " then (an outage after start is back-pressure, not an exit)",
    )


class Settings(BaseSettings):
    """Everything offsite reads at start; loaded once and passed explicitly."""

    model_config = SettingsConfigDict(
        env_prefix="OFFSITE_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    state_dir: Path = Field(
        default=Path("var"),
        description="embedded database, broker data and evidence live under here",
    )
    log_level: str = Field(default="INFO", description="root log level")
    # NoDecode: the environment gives "ingest,engine", not JSON; _roles splits it.
    roles: Annotated[frozenset[Role], NoDecode] = Field(
        default=ALL_ROLES,
        description="parts this process runs: ingest, engine, video, api (default all);"
        " a list or a comma list, `offsite run --role` wins",
    )
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    hj212: Hj212Settings = Field(default_factory=Hj212Settings)
    subjects: SubjectsSettings = Field(default_factory=SubjectsSettings)
    rules: RulesSettings = Field(default_factory=RulesSettings)
    alerts: AlertsSettings = Field(default_factory=AlertsSettings)
    video: VideoSettings = Field(default_factory=VideoSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)

    @field_validator("roles", mode="before")
    @classmethod
    def _roles(cls, value: Any) -> Any:
        # "ingest,engine" from the environment, or a YAML list; an unknown name is refused.
        if isinstance(value, str):
            return parse_roles([value])
        if isinstance(value, list | tuple | set | frozenset):
            return parse_roles(str(v) for v in value)
        return value

    @model_validator(mode="after")
    def _escalation_departments_exist(self) -> Settings:
        # Checked here, where the department list (api) and the alerts settings meet: an
        # unknown code would escalate to no one.
        known = {d["code"] for d in load_departments() if not d.get("retired", False)}
        for grade, handling in self.alerts.credit_handling.items():
            unknown = sorted(set(handling.escalate_to) - known)
            if unknown:
                key = f"credit_handling.{grade.value}.escalate_to"
                raise ValueError(
                    f"alerts.{key} (env OFFSITE_ALERTS__{key.upper().replace('.', '__')}): "
                    f"unknown or retired department {', '.join(unknown)}"
                    f" (known: {', '.join(sorted(known))})"
                )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML file is passed as init values by load_settings, so env wins over it.
        return (env_settings, init_settings)


class ConfigError(Exception):
    """A setting is wrong; the message names where it came from, the key and the reason."""


def _format_errors(err: ValidationError, source: str) -> str:
    lines = [f"invalid configuration ({source}):"]
    for e in err.errors():
        if not e["loc"]:
            # A check across sections (Settings' own validators): its message names the key.
            lines.append(f"  {e.get('ctx', {}).get('error', e['msg'])}")
            continue
        key = ".".join(str(p) for p in e["loc"])
        env_key = "OFFSITE_" + "__".join(str(p).upper() for p in e["loc"])
        reason = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        lines.append(f"  {key} (env {env_key}): {reason}")
    return "\n".join(lines)


def load_settings(config_file: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Read settings from OFFSITE_CONFIG (or `config_file`) and the environment.

    Raises ConfigError naming the file, the key and the reason when anything is wrong.
    """
    path = config_file if config_file is not None else os.environ.get("OFFSITE_CONFIG")
    data: dict[str, Any] = {}
    source = "environment"
    if path:
        source = f"{path} and environment"
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as err:
            raise ConfigError(f"cannot read config file {path}: {err.strerror}") from err
        except yaml.YAMLError as err:
            raise ConfigError(f"config file {path} is not valid YAML: {err}") from err
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path}: the top level must be a mapping")
        data = loaded
    data.update(overrides)
    try:
        return Settings(**data)
    except ValidationError as err:
        raise ConfigError(_format_errors(err, source)) from err
