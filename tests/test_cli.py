"""CLI commands on the embedded database: they must not stop a server someone else runs."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from offsite.cli import main
from offsite.embedded import EmbeddedPostgres


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The command's state folder, no config file or database URL from the environment."""
    for var in ("OFFSITE_CONFIG", "OFFSITE_DATABASE__URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OFFSITE_STATE_DIR", str(tmp_path))
    return tmp_path


def test_keys_create_leaves_a_running_embedded_server_alone(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = EmbeddedPostgres(state_dir / "postgres", durable=False)  # as `offsite run` would
    server.start()
    try:
        assert main(["keys", "create", "--department", "EEB", "--role", "viewer"]) == 0
        key = capsys.readouterr().out.strip()
        assert key.startswith("osk_")
        assert server.running_port() == server.port, "the command stopped the running server"
        with psycopg.connect(server.url) as conn:
            assert conn.execute("SELECT count(*) FROM api_keys").fetchone() == (1,)
    finally:
        server.stop()
    # With nobody running it, the command starts the server and stops it again.
    assert main(["keys", "create", "--department", "EEB", "--role", "viewer"]) == 0
    assert server.running_port() is None


def test_keys_create_names_a_bad_department(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "create", "--department", "XYZ", "--role", "viewer"]) == 2
    assert "department 'XYZ' is unknown" in capsys.readouterr().err
