"""Settings: env over YAML, nested keys, unknown keys refused with the key named."""

from __future__ import annotations

from pathlib import Path

import pytest

from offsite.settings import ConfigError, load_settings
from subjects.models import CreditGrade, EnvColour


def test_env_overrides_yaml_and_nests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "offsite.yaml"
    cfg.write_text("http:\n  port: 9000\nmqtt:\n  shared_group: ingest\n")
    monkeypatch.setenv("OFFSITE_HTTP__PORT", "9100")
    monkeypatch.setenv("OFFSITE_DATABASE__URL", "postgresql://db.example/offsite")
    s = load_settings(config_file=cfg)
    assert s.http.port == 9100
    assert s.mqtt.shared_group == "ingest"
    assert s.database.url == "postgresql://db.example/offsite"


def test_config_file_named_by_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("ingest:\n  batch_max_readings: 1234\n")
    monkeypatch.setenv("OFFSITE_CONFIG", str(cfg))
    assert load_settings().ingest.batch_max_readings == 1234


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("http:\n  prot: 1\n", "http.prot (env OFFSITE_HTTP__PROT): unknown key"),
        ("bogus: 1\n", "bogus (env OFFSITE_BOGUS): unknown key"),
        ("http:\n  port: high\n", "http.port"),
        ("- a\n- b\n", "the top level must be a mapping"),
        ("http: [\n", "is not valid YAML"),
    ],
)
def test_bad_yaml_names_file_key_and_reason(tmp_path: Path, yaml_text: str, message: str) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml_text)
    with pytest.raises(ConfigError) as err:
        load_settings(config_file=cfg)
    assert message in str(err.value)
    assert str(cfg) in str(err.value)


def test_unknown_env_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFSITE_MQTT__CLEINT_ID", "x")
    with pytest.raises(ConfigError, match=r"mqtt.cleint_id .*unknown key"):
        load_settings(config_file=None)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(config_file=tmp_path / "nope.yaml")


def test_an_escalation_to_an_unknown_department_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "offsite.yaml"
    config.write_text(
        "alerts:\n  credit_handling:\n    D: {method: on_site, escalate_after_s: 7200,"
        " escalate_to: [DRC, FIN, XYZ]}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        load_settings(config)
    message = str(err.value)
    assert "alerts.credit_handling.D.escalate_to" in message
    assert "unknown or retired department FIN, XYZ" in message  # FIN is retired, XYZ unknown
    ok = tmp_path / "ok.yaml"
    ok.write_text(
        "alerts:\n  credit_handling:\n    D: {method: on_site, escalate_after_s: 7200,"
        " escalate_to: [DRC, JUS]}\n",
        encoding="utf-8",
    )
    handling = load_settings(ok).alerts.credit_handling
    assert handling[CreditGrade.D].escalate_to == ["DRC", "JUS"]
    # Setting one grade keeps the defaults of the others.
    assert handling[EnvColour.BLACK].escalate_after_s == 3600
