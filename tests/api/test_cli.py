"""`offsite users ...` and `offsite keys list|revoke` against the test's database."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from api import people
from offsite.cli import main


@pytest.fixture
def cli_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OFFSITE_CONFIG", raising=False)
    monkeypatch.setenv("OFFSITE_DATABASE__URL", db_url)


@pytest.mark.usefixtures("cli_env")
def test_users_lifecycle(capsys: pytest.CaptureFixture[str], db: psycopg.Connection[Any]) -> None:
    args = ["users", "create", "--name", "张伟", "--login", "zhangwei", "--department", "EEB"]
    assert main([*args, "--role", "officer"]) == 0
    out = capsys.readouterr()
    assert "created 张伟 (zhangwei), officer of EEB" in out.out
    password = out.out.split("password: ")[1].strip()
    assert "shown only this once" in out.err
    assert people.verify(db, "zhangwei", password) is not None

    assert main([*args, "--role", "officer"]) == 2
    assert "login 'zhangwei' is taken" in capsys.readouterr().err
    bad = ["users", "create", "--name", "x", "--login", "xx", "--department", "NOPE"]
    assert main([*bad, "--role", "viewer"]) == 2
    assert "department 'NOPE' is unknown" in capsys.readouterr().err

    assert main(["users", "list"]) == 0
    listing = capsys.readouterr().out
    assert "zhangwei" in listing
    assert "active" in listing

    assert main(["users", "reset", "zhangwei"]) == 0
    new = capsys.readouterr().out.split("password: ")[1].strip()
    assert people.verify(db, "zhangwei", password) is None
    assert people.verify(db, "zhangwei", new) is not None

    assert main(["users", "disable", "zhangwei"]) == 0
    assert "disabled 张伟 (zhangwei)" in capsys.readouterr().out
    assert people.verify(db, "zhangwei", new) is None
    assert main(["users", "disable", "nobody"]) == 2
    assert "no account has the login 'nobody'" in capsys.readouterr().err
    assert main(["users", "enable", "zhangwei"]) == 0
    assert people.verify(db, "zhangwei", new) is not None


@pytest.mark.usefixtures("cli_env")
def test_keys_list_and_revoke(capsys: pytest.CaptureFixture[str]) -> None:
    create = ["keys", "create", "--department", "EMB", "--role", "viewer", "--name", "duty desk"]
    assert main(create) == 0
    key = capsys.readouterr().out.strip()
    assert main(["keys", "list"]) == 0
    listing = capsys.readouterr().out
    assert key[:10] in listing
    assert key not in listing  # never the key itself
    assert "duty desk" in listing
    key_id = int(listing.splitlines()[1].split()[0])
    assert main(["keys", "revoke", str(key_id)]) == 0
    assert "revoked key" in capsys.readouterr().out
    assert main(["keys", "list"]) == 0
    assert "revoked" in capsys.readouterr().out
    assert main(["keys", "revoke", "9999"]) == 2
    assert "no API key has the id 9999" in capsys.readouterr().err
