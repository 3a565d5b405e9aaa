"""Small bodies that cost a lot, and large ones: bounded YAML, capped bodies, key first."""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import create_key
from api.context import ApiContext
from rules.safe_yaml import YamlLimitError, safe_load
from tests.helpers import serving

# Smaller than the probe's 254-byte document: 229 bytes, six levels of nine aliases, 9**6 strings.
BOMB = "- &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"- &{n} [{','.join(['*' + p] * 9)}]\n" for p, n in zip("abcdef", "bcdefg", strict=True)
)
MB = 1024 * 1024


@pytest.fixture
def client(subjects_ctx: ApiContext) -> Iterator[TestClient]:
    with TestClient(create_app(subjects_ctx)) as c:
        yield c


@pytest.fixture
def server(subjects_ctx: ApiContext) -> Iterator[int]:
    """The app behind a real uvicorn on a free port, as `offsite run` serves it."""
    with serving(create_app(subjects_ctx)) as port:
        yield port


def key(db: psycopg.Connection[Any], role: str = "viewer") -> str:
    return create_key(db, "EEB", role)


def test_the_alias_bomb_is_refused_by_the_loader() -> None:
    assert len(BOMB) == 229
    with pytest.raises(YamlLimitError, match="expands to more than"):
        safe_load(BOMB)
    with pytest.raises(YamlLimitError, match="refers to a node that contains it"):
        safe_load("a: &a [1, *a]")
    with pytest.raises(YamlLimitError, match="nested deeper than 64"):
        safe_load("a: " + "[" * 5000 + "]" * 5000)
    # Ordinary anchors stay usable.
    assert safe_load("base: &b {op: '>'}\nr: *b") == {"base": {"op": ">"}, "r": {"op": ">"}}


def test_validate_refuses_bombs_and_deep_yaml(
    client: TestClient, db: psycopg.Connection[Any]
) -> None:
    h = {"Authorization": f"Bearer {key(db)}"}
    r = client.post("/api/v1/rules/validate", content=BOMB, headers=h)
    assert r.status_code == 200
    assert r.json()["valid"] is False
    assert "expands to more than 100000 nodes" in r.json()["problems"][0]["message"]
    for deep in ("a: " + "[" * 5000 + "]" * 5000, "a: " + "{k: " * 5000 + "}" * 5000):
        r = client.post("/api/v1/rules/validate", content=deep, headers=h)
        assert r.status_code == 200, r.text
        assert "nested deeper than 64 levels" in r.json()["problems"][0]["message"]


def test_body_without_a_valid_key_is_refused_before_it_is_read(client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer osk_not-a-key"}):
        r = client.post("/api/v1/rules/validate", content=b"id: x\n" * 1000, headers=headers)
        assert r.status_code == 401, r.text


def _response(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _send_until_answered(sock: socket.socket, total: int, chunked: bool) -> int:
    """Stream up to `total` bytes of body, stopping once the server answers; bytes sent."""
    piece = b"x" * (64 * 1024)
    frame = (b"%x\r\n" % len(piece)) + piece + b"\r\n" if chunked else piece
    sent = 0
    while sent < total:
        readable, _, _ = select.select([sock], [], [], 0)
        if readable:
            break
        try:
            sock.sendall(frame)
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += len(piece)
    return sent


@pytest.mark.parametrize("with_key", [False, True])
def test_a_200_mb_body_is_refused_without_being_read(
    server: int, db: psycopg.Connection[Any], with_key: bool
) -> None:
    auth = f"Authorization: Bearer {key(db, 'officer')}\r\n" if with_key else ""
    for path in ("/api/v1/rules/validate", "/api/v1/rules/dry-run", "/api/v1/subjects/import"):
        # Declared length: answered from the headers alone.
        with socket.create_connection(("127.0.0.1", server)) as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: text/csv\r\n"
                f"Content-Length: {200 * MB}\r\n\r\n".encode()
            )
            head = _response(sock)
        assert head.startswith(b"HTTP/1.1 413"), (path, head[:200])
        # Streamed without a length: counted, cut at the cap (a key is needed to get that far).
        with socket.create_connection(("127.0.0.1", server)) as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n"
                "Transfer-Encoding: chunked\r\n\r\n".encode()
            )
            sent = _send_until_answered(sock, 200 * MB, chunked=True)
            head = _response(sock)
        expected = b"HTTP/1.1 413" if with_key else b"HTTP/1.1 401"
        assert head.startswith(expected), (path, head[:200])
        limit = 32 * MB if path.endswith("import") else MB
        assert sent < limit + 16 * MB, (path, sent)
