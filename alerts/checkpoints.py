"""Signed checkpoints of the audit chain: Ed25519 over (seq, hash), exportable and checkable."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import psycopg
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from alerts.audit import VerifyResult, canonical_json, format_time, verify

DOMAIN = "offsite-audit-checkpoint/1"  # signed with the data: a signature means this only


class CheckpointError(ValueError):
    """A key or an exported file cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The chain's head at one moment, signed."""

    seq: int
    hash: str
    at: datetime
    public_key: str  # hex of the raw 32-byte Ed25519 public key
    signature: str  # hex

    def message(self) -> bytes:
        return canonical_json([DOMAIN, self.seq, self.hash, format_time(self.at)]).encode()

    def to_json(self) -> str:
        return canonical_json(
            {"seq": self.seq, "hash": self.hash, "at": format_time(self.at),
             "public_key": self.public_key, "signature": self.signature}
        )  # fmt: skip

    @staticmethod
    def from_json(line: str) -> Checkpoint:
        try:
            d = json.loads(line)
            return Checkpoint(
                seq=int(d["seq"]),
                hash=str(d["hash"]),
                at=datetime.fromisoformat(str(d["at"]).replace("Z", "+00:00")),
                public_key=str(d["public_key"]),
                signature=str(d["signature"]),
            )
        except (ValueError, KeyError, TypeError) as err:
            raise CheckpointError(f"not a checkpoint line: {line[:80]!r} ({err})") from err


def new_key() -> str:
    """A fresh signing key as base64 of its 32-byte seed."""
    seed = Ed25519PrivateKey.generate().private_bytes_raw()
    return base64.b64encode(seed).decode()


def signing_key(text: str) -> Ed25519PrivateKey:
    try:
        seed = base64.b64decode(text.strip(), validate=True)
    except binascii.Error as err:
        raise CheckpointError("the audit signing key is not base64") from err
    if len(seed) != 32:
        raise CheckpointError(f"the audit signing key must be 32 bytes, got {len(seed)}")
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_hex(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def signature_holds(cp: Checkpoint, public_key: str | None = None) -> bool:
    """The signature is valid for `public_key` (default: the key named in the checkpoint)."""
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key or cp.public_key))
        key.verify(bytes.fromhex(cp.signature), cp.message())
    except (ValueError, InvalidSignature):
        return False
    return True


def sign_head(
    conn: psycopg.Connection[Any], key: Ed25519PrivateKey, at: datetime
) -> Checkpoint | None:
    """Sign the chain's current head and store it; None when the chain is empty or the head
    is signed already."""
    with conn.transaction():
        head = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        if head is None:
            return None
        done = conn.execute("SELECT 1 FROM audit_checkpoints WHERE seq = %s", (head[0],))
        if done.fetchone() is not None:
            return None
        unsigned = Checkpoint(int(head[0]), str(head[1]), at, public_hex(key), "")
        cp = Checkpoint(
            unsigned.seq,
            unsigned.hash,
            at,
            unsigned.public_key,
            key.sign(unsigned.message()).hex(),
        )
        conn.execute(
            "INSERT INTO audit_checkpoints (seq, hash, at, public_key, signature)"
            " VALUES (%s, %s, %s, %s, %s)",
            (cp.seq, cp.hash, cp.at, cp.public_key, cp.signature),
        )
    return cp


def stored(conn: psycopg.Connection[Any], after_seq: int = 0) -> list[Checkpoint]:
    rows = conn.execute(
        "SELECT seq, hash, at, public_key, signature FROM audit_checkpoints"
        " WHERE seq > %s ORDER BY seq",
        (after_seq,),
    )
    return [Checkpoint(int(r[0]), r[1], r[2], r[3], r[4]) for r in rows]


def read_export(lines: Iterable[str]) -> list[Checkpoint]:
    return [Checkpoint.from_json(line) for line in lines if line.strip()]


def check_export(checkpoints: Sequence[Checkpoint], public_key: str) -> list[str]:
    """Problems of an exported file on its own (no database): bad signatures, wrong key,
    seq going backwards. Empty when it holds."""
    problems = []
    last = 0
    for cp in checkpoints:
        if cp.public_key != public_key:
            problems.append(f"seq {cp.seq}: signed by another key ({cp.public_key[:16]}...)")
        elif not signature_holds(cp, public_key):
            problems.append(f"seq {cp.seq}: the signature does not hold")
        if cp.seq <= last:
            problems.append(f"seq {cp.seq}: not after the previous checkpoint ({last})")
        last = cp.seq
    return problems


class CheckpointBreak(StrEnum):
    """How the signed checkpoints themselves fail, before the chain is walked."""

    BAD_SIGNATURE = "bad_signature"  # not signed by the key (a forged checkpoint)
    DISAGREE = "disagree"  # two signed checkpoints of one seq name different hashes


@dataclass(frozen=True, slots=True)
class SignedVerify:
    """The chain checked against every signed checkpoint: `chain` is None when a checkpoint
    failed first (`broken` and `broken_seq` say which); `latest` is the newest checkpoint."""

    chain: VerifyResult | None
    checkpoints: int
    latest: Checkpoint | None
    broken: CheckpointBreak | None = None
    broken_seq: int | None = None

    @property
    def ok(self) -> bool:
        return self.broken is None and self.chain is not None and self.chain.ok


def verify_signed(
    conn: psycopg.Connection[Any],
    exported: Sequence[Checkpoint] = (),
    public_key: str | None = None,
) -> SignedVerify:
    """Walk the chain against the stored checkpoints and those of `exported` (a copy kept
    off the box). With `public_key` every signature must hold for it; without, for the key
    each checkpoint names (which proves less: say so where it is shown)."""
    signed = [*stored(conn), *exported]
    latest = max(signed, key=lambda cp: cp.seq, default=None)
    anchors: dict[int, str] = {}
    for cp in signed:
        if not signature_holds(cp, public_key):
            return SignedVerify(None, len(signed), latest, CheckpointBreak.BAD_SIGNATURE, cp.seq)
        if anchors.setdefault(cp.seq, cp.hash) != cp.hash:
            return SignedVerify(None, len(signed), latest, CheckpointBreak.DISAGREE, cp.seq)
    return SignedVerify(verify(conn, anchors=anchors), len(anchors), latest)
