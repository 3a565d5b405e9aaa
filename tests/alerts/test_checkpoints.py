"""Signed checkpoints: a cut tail and a wholesale recomputation are both found."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from alerts import audit, checkpoints
from alerts.cli import export_command, verify_command, verify_export_command
from alerts.store import AlertStore
from offsite.cli import main
from tests.alerts.support import Clock
from tests.alerts.test_audit import history

KEY = checkpoints.new_key()
PUBLIC = checkpoints.public_hex(checkpoints.signing_key(KEY))


def tamper(db: psycopg.Connection[Any], *statements: tuple[str, tuple[Any, ...]]) -> None:
    """Edit the log and its checkpoints behind the triggers' back, as a superuser could."""
    with db.transaction():
        for table in ("audit_log", "audit_checkpoints"):
            db.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        for sql, params in statements:
            db.execute(sql, params)
        for table in ("audit_log", "audit_checkpoints"):
            db.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def signed_and_exported(
    db: psycopg.Connection[Any], store: AlertStore, clock: Clock
) -> list[checkpoints.Checkpoint]:
    history(store, db, clock)
    cp = checkpoints.sign_head(db, checkpoints.signing_key(KEY), datetime.now(UTC))
    assert cp is not None
    assert checkpoints.sign_head(db, checkpoints.signing_key(KEY), datetime.now(UTC)) is None
    out = io.StringIO()
    export_command(db, 0, out)
    exported = checkpoints.read_export(out.getvalue().splitlines())
    assert [c.seq for c in exported] == [cp.seq]
    return exported


def run_verify(db: psycopg.Connection[Any], exported: list[checkpoints.Checkpoint]) -> str:
    out = io.StringIO()
    code = verify_command(db, out, exported=exported, public_key=PUBLIC)
    return f"{code} {out.getvalue()}"


def test_intact_chain_and_its_export_verify(
    db: psycopg.Connection[Any], store: AlertStore, clock: Clock
) -> None:
    exported = signed_and_exported(db, store, clock)
    assert run_verify(db, exported).startswith("0 audit chain ok")
    # Off the box: the file alone, with the public key.
    lines = [c.to_json() for c in exported]
    out = io.StringIO()
    assert verify_export_command(lines, PUBLIC, out) == 0
    forged = lines[0].replace(exported[0].signature[:8], "00000000")
    assert verify_export_command([forged], PUBLIC, io.StringIO()) == 1
    other = checkpoints.public_hex(checkpoints.signing_key(checkpoints.new_key()))
    assert verify_export_command(lines, other, io.StringIO()) == 1


def test_a_cut_tail_is_found(db: psycopg.Connection[Any], store: AlertStore, clock: Clock) -> None:
    exported = signed_and_exported(db, store, clock)
    head = exported[-1].seq
    # The intruder removes the last rows and the checkpoint that covered them.
    tamper(
        db,
        ("DELETE FROM audit_log WHERE seq > %s", (head - 3,)),
        ("DELETE FROM audit_checkpoints", ()),
    )
    assert audit.verify(db).ok  # the chain alone cannot tell
    report = run_verify(db, exported)
    assert report.startswith("1 audit chain BROKEN"), report
    assert f"covers seq {head} but the chain ends at seq {head - 3}" in report


def test_a_recomputed_chain_is_found(
    db: psycopg.Connection[Any], store: AlertStore, clock: Clock
) -> None:
    exported = signed_and_exported(db, store, clock)
    rows = db.execute(
        "SELECT seq, at, actor, entity, entity_id, action, payload FROM audit_log ORDER BY seq"
    ).fetchall()
    # Rewrite seq 2 and recompute every hash after it, as a careful intruder would.
    prev, statements = audit.GENESIS, []
    for seq, at, actor, entity, entity_id, action, original in rows:
        payload = '{"forged":true}' if seq == 2 else original
        h = audit.row_hash(seq, at, actor, entity, entity_id, action, payload, prev)
        statements.append(
            ("UPDATE audit_log SET payload = %s, prev_hash = %s, hash = %s WHERE seq = %s",
             (payload, prev, h, seq))
        )  # fmt: skip
        prev = h
    tamper(db, *statements, ("DELETE FROM audit_checkpoints", ()))
    assert audit.verify(db).ok  # consistent again, without the checkpoints
    report = run_verify(db, exported)
    assert report.startswith("1 audit chain BROKEN"), report
    assert "differs from the signed checkpoint" in report
    # Re-signing the forged head with another key does not help either.
    forger = checkpoints.signing_key(checkpoints.new_key())
    assert checkpoints.sign_head(db, forger, datetime.now(UTC)) is not None
    report = run_verify(db, [])
    assert report.startswith("1 audit chain BROKEN: the checkpoint of seq"), report


def test_cli_signs_exports_and_verifies_off_the_box(
    db: psycopg.Connection[Any],
    db_url: str,
    store: AlertStore,
    clock: Clock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    history(store, db, clock)
    monkeypatch.delenv("OFFSITE_CONFIG", raising=False)
    monkeypatch.setenv("OFFSITE_DATABASE__URL", db_url)
    monkeypatch.setenv("OFFSITE_ALERTS__AUDIT_SIGNING_KEY", KEY)
    assert main(["audit", "checkpoint"]) == 0
    assert "signed the audit chain's head: seq" in capsys.readouterr().out
    assert main(["audit", "export-checkpoints"]) == 0
    copy = tmp_path / "checkpoints.jsonl"
    copy.write_text(capsys.readouterr().out, encoding="utf-8")
    assert main(["audit", "verify", "--checkpoints", str(copy)]) == 0
    assert "1 signed checkpoints hold" in capsys.readouterr().out
    monkeypatch.delenv("OFFSITE_ALERTS__AUDIT_SIGNING_KEY")
    monkeypatch.delenv("OFFSITE_DATABASE__URL")
    assert main(["audit", "verify-export", str(copy), "--public-key", PUBLIC]) == 0
    assert "1 checkpoints hold" in capsys.readouterr().out
