"""Input no route can store answers 422 naming the field, never 500."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import create_key
from api.context import ApiContext
from subjects.credit_code import make

PLANT = make("9", "1", "330100", "71610585")
BIG = str(2**63)


@pytest.fixture
def client(subjects_ctx: ApiContext) -> Iterator[TestClient]:
    with TestClient(create_app(subjects_ctx)) as c:
        yield c


@pytest.fixture
def h(db: psycopg.Connection[Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_key(db, 'EEB', 'admin')}"}


def detail(r: Any) -> str:
    assert r.status_code == 422, (r.status_code, r.text)
    d = r.json()["detail"]
    return d if isinstance(d, str) else "; ".join(".".join(map(str, p["loc"])) for p in d)


def raw_json(client: TestClient, path: str, text: str, h: dict[str, str]) -> Any:
    return client.post(path, content=text, headers={**h, "Content-Type": "application/json"})


def test_nul_bytes_anywhere(client: TestClient, h: dict[str, str]) -> None:
    r = client.post("/api/v1/subjects", json={"credit_code": PLANT, "name": "a\x00b"}, headers=h)
    assert detail(r).startswith("body.name: contains a NUL")
    r = client.post("/api/v1/subjects", json={"credit_code": PLANT, "name": "ok", "tags": ["\x00"]})
    assert r.status_code == 401  # the key comes first
    assert detail(client.get("/api/v1/subjects?q=a%00", headers=h)).startswith("query.q:")
    assert detail(client.get("/api/v1/subjects/AB%00CD", headers=h)).startswith("path:")
    r = client.get("/api/v1/devices/x/readings", params={"metric": "p\x00"}, headers=h)
    assert detail(r).startswith("query.metric:")


def test_numbers_json_cannot_carry(client: TestClient, h: dict[str, str]) -> None:
    assert "offset" in detail(client.get(f"/api/v1/subjects?offset={BIG}", headers=h))
    assert "alert_id" in detail(client.get(f"/api/v1/alerts/{BIG}", headers=h))
    assert "clue_id" in detail(client.get(f"/api/v1/clues/{BIG}", headers=h))
    for number in ("NaN", "Infinity", "-Infinity", "1e400"):
        text = f'{{"credit_code": "{PLANT}", "name": "n", "attributes": {{"a": {number}}}}}'
        assert detail(raw_json(client, "/api/v1/subjects", text, h)).startswith("body")
    text = f'{{"credit_code": "{PLANT}", "name": "n", "attributes": {{"a": {BIG}}}}}'
    assert detail(raw_json(client, "/api/v1/subjects", text, h)).startswith("body.attributes.a:")


def test_lone_surrogates_and_deep_json(client: TestClient, h: dict[str, str]) -> None:
    text = f'{{"credit_code": "{PLANT}", "name": "\\ud800"}}'
    assert detail(raw_json(client, "/api/v1/subjects", text, h)).startswith(
        "body.name: contains a lone"
    )
    deep = "[" * 5000 + "]" * 5000
    assert "nested deeper than 64" in detail(raw_json(client, "/api/v1/rules/dry-run", deep, h))
    deep_obj = '{"rule": ' + '{"a": ' * 100 + "1" + "}" * 100 + "}"
    assert "nested deeper" in detail(raw_json(client, "/api/v1/rules/dry-run", deep_obj, h))


def test_dates_outside_the_calendar_and_huge_buckets(client: TestClient, h: dict[str, str]) -> None:
    path = "/api/v1/devices/x/readings"
    for name, value in (
        ("from", "0001-01-01T00:00:00+01:00"),
        ("to", "9999-12-31T23:00:00-05:00"),
        ("from", "0000-01-01T00:00:00Z"),
        ("to", "10000-01-01T00:00:00Z"),
    ):
        r = client.get(path, params={"metric": "pm25", name: value}, headers=h)
        assert detail(r).startswith(f"query.{name}"), value
    r = client.get(path, params={"metric": "pm25", "bucket": "99999999999d"}, headers=h)
    assert "longer than 366 days" in detail(r)
    r = client.post(
        f"/api/v1/subjects/{PLANT}/departments",
        json={"department": "HLT", "since": "9999-12-31T23:59:59-10:00"},
        headers=h,
    )
    assert detail(r).startswith("body.since:")


def test_validation_errors_do_not_echo_the_input(client: TestClient, h: dict[str, str]) -> None:
    r = client.post("/api/v1/subjects", json={"credit_code": PLANT, "name": 5}, headers=h)
    assert r.status_code == 422
    problems = r.json()["detail"]
    assert problems[0]["loc"] == ["body", "name"]
    assert set(problems[0]) == {"loc", "msg", "type"}
