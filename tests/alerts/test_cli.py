"""`offsite audit verify` on a real database: exit codes and the exact broken position."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from alerts.store import AlertStore
from offsite.cli import main
from tests.alerts.support import CHEM, PLANT, clue


def test_offsite_audit_verify(
    db_url: str,
    db: psycopg.Connection[Any],
    store: AlertStore,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OFFSITE_DATABASE__URL", db_url)
    monkeypatch.delenv("OFFSITE_CONFIG", raising=False)
    store.apply_clue(db, clue(CHEM))
    store.apply_clue(db, clue(PLANT))
    assert main(["audit", "verify"]) == 0
    assert "audit chain ok: 4 rows verified" in capsys.readouterr().out
    with db.transaction():
        db.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update")
        db.execute("UPDATE audit_log SET actor = 'someone else' WHERE seq = 3")
        db.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update")
    assert main(["audit", "verify"]) == 1
    out = capsys.readouterr().out
    assert "audit chain BROKEN at seq 3: seq 3: contents do not match its hash" in out
