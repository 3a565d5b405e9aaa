"""Operator deploy files: alert rules, scrape config, dashboard, compose, systemd, examples."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric

from ingest.metrics import IngestMetrics
from offsite.settings import load_settings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
PROM = DEPLOY / "prometheus"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian package prometheus provides it)"
)
OFFSITE_METRIC = re.compile(r"\boffsite_[a-z_]+")


def _exposed_names(families: list[Metric]) -> set[str]:
    """Every series name a scrape can show for these families (counters end in _total)."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "gauge": ("",),
    }
    return {f.name + s for f in families for s in suffixes.get(f.type, ("",))}


@pytest.fixture(scope="module")
def ingest_metric_names() -> set[str]:
    registry = CollectorRegistry()
    IngestMetrics(registry)
    return _exposed_names(list(registry.collect()))


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_alert_rules_are_complete_and_use_only_metrics_offsite_exposes(
    ingest_metric_names: set[str],
) -> None:
    doc = _load(PROM / "offsite-rules.yml")
    alerts = {r["alert"]: r for g in doc["groups"] for r in g["rules"]}
    for name in (
        "OffsiteIngestStalled",
        "OffsiteDatabaseDown",
        "OffsiteMqttDisconnected",
        "OffsiteDeadLetterSpike",
        "OffsiteIngestQueueNearFull",
        "OffsiteIngestLagHigh",
        "MosquittoDroppingMessages",
    ):
        assert name in alerts, name
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert rule["annotations"]["summary"], name
        used = set(OFFSITE_METRIC.findall(rule["expr"]))
        assert used <= ingest_metric_names, (name, used - ingest_metric_names)


def test_dashboard_queries_use_only_metrics_offsite_exposes(
    ingest_metric_names: set[str],
) -> None:
    dash = json.loads((DEPLOY / "grafana/dashboards/offsite-ingest.json").read_text("utf-8"))
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert exprs
    used = {m for e in exprs for m in OFFSITE_METRIC.findall(e)}
    assert used <= ingest_metric_names, used - ingest_metric_names
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    datasource = _load(DEPLOY / "grafana/provisioning/datasources/prometheus.yml")
    uid = datasource["datasources"][0]["uid"]
    assert all(p["datasource"]["uid"] == uid for p in dash["panels"])


@needs_promtool
def test_promtool_accepts_the_rules_and_the_config() -> None:
    for args in (["check", "rules", "offsite-rules.yml"], ["check", "config", "prometheus.yml"]):
        done = subprocess.run(
            [str(PROMTOOL), *args], cwd=PROM, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_alert_rules_fire_as_their_unit_tests_expect() -> None:
    done = subprocess.run(
        [str(PROMTOOL), "test", "rules", "offsite-rules.test.yml"],
        cwd=PROM,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_mounts_files_that_exist() -> None:
    compose_dir = DEPLOY / "compose"
    doc = _load(compose_dir / "compose.yaml")
    services = doc["services"]
    assert {"timescaledb", "mosquitto", "offsite", "prometheus", "grafana"} <= set(services)
    generated = {"offsite.passwd", "offsite.acl"}  # written by make-passwd.sh from .env
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (compose_dir / source).exists(), (name, source)
    mosquitto = " ".join(services["mosquitto"]["entrypoint"])
    for file in generated:
        assert f"/run/offsite-broker/{file}" in mosquitto
    # The broker runs the project's config, not the image's permissive default.
    assert (
        "../mosquitto/mosquitto.conf:/mosquitto/config/mosquitto.conf:ro"
        in (services["mosquitto"]["volumes"])
    )


@pytest.mark.parametrize(
    "path", [DEPLOY / "compose/offsite.yaml", DEPLOY / "systemd/offsite.yaml.example"]
)
def test_example_settings_files_load(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("OFFSITE_CONFIG", "OFFSITE_STATE_DIR"):
        monkeypatch.delenv(key, raising=False)
    settings = load_settings(config_file=path)
    assert settings.http.host == "0.0.0.0"  # Prometheus must reach it
    assert settings.http.port == 8080


def test_systemd_unit_runs_offsite_with_a_config_and_hardening() -> None:
    text = (DEPLOY / "systemd/offsite.service").read_text("utf-8")
    sections: dict[str, dict[str, list[str]]] = {}
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections[current] = {}
            continue
        key, _, value = line.partition("=")
        sections[current].setdefault(key, []).append(value)
    service = sections["Service"]
    assert service["ExecStart"][0].endswith("offsite run")
    assert "OFFSITE_CONFIG=/etc/offsite/offsite.yaml" in service["Environment"]
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
    }.items():
        assert service[key] == [value], key
    assert sections["Install"]["WantedBy"] == ["multi-user.target"]
    assert "StartLimitIntervalSec" in sections["Unit"]
