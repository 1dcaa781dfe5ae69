"""The REST API's gate: every /api route but GET /api/health needs a bearer token; readonly
tokens may only read; unknown, malformed and revoked tokens get 401 with a clear message."""
from __future__ import annotations

import re
import warnings

import pytest
from sqlalchemy import select

from ferry.engine.api import create_app
from ferry.engine.db import Database
from ferry.engine.services.tokens import ApiToken, issue_token, revoke_token


@pytest.fixture
def engine(tmp_path):
    """(TestClient without credentials, database URL)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    url = f"sqlite:///{tmp_path / 'engine.db'}"
    with TestClient(create_app(url), raise_server_exceptions=False) as client:
        yield client, url


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_health_is_open_everything_else_needs_a_token(engine):
    client, _ = engine
    assert client.get("/api/health").status_code == 200
    answer = client.get("/api/clusters")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
    detail = answer.json()["detail"]
    assert detail["field"] == "Authorization" and detail["reason"] == "missing"
    assert "ferry token create" in detail["message"]


def test_every_api_route_refuses_without_a_token(engine):
    """Routers added later (orchestration, events) are covered too: walk the OpenAPI paths."""
    client, _ = engine
    paths = client.get("/openapi.json").json()["paths"]
    checked = 0
    for path, methods in paths.items():
        for method in methods:
            if (path, method) == ("/api/health", "get"):
                continue
            concrete = re.sub(r"\{[^}]+\}", "x", path)
            answer = client.request(method.upper(), concrete, json={})
            assert answer.status_code == 401, (method, path, answer.text)
            checked += 1
    assert checked >= 10


@pytest.mark.parametrize("header, reason", [
    ("Bearer ferry_" + "A" * 43, "unknown token"),
    ("Bearer not-a-token", "unknown token"),
    ("Basic dXNlcjpwYXNz", "not a bearer token"),
    ("Bearer", "not a bearer token"),
])
def test_wrong_tokens_are_refused(engine, header, reason):
    client, url = engine
    issue_token(url, "admin")
    answer = client.get("/api/clusters", headers={"Authorization": header})
    assert answer.status_code == 401
    assert answer.json()["detail"]["reason"] == reason


def test_revoked_token_is_refused_and_says_so(engine):
    client, url = engine
    token, record = issue_token(url, "admin", "alice")
    assert client.get("/api/clusters", headers=bearer(token)).status_code == 200
    db = Database(url)
    with db.session() as session:
        revoke_token(session, "alice")
    db.dispose()
    answer = client.get("/api/clusters", headers=bearer(token))
    assert answer.status_code == 401
    assert "token 'alice' was revoked" in answer.json()["detail"]["message"]


def test_readonly_reads_but_may_not_change(engine):
    client, url = engine
    admin, _ = issue_token(url, "admin")
    readonly, _ = issue_token(url, "readonly", "viewer")
    body = {"name": "c1"}
    assert client.get("/api/clusters", headers=bearer(readonly)).status_code == 200
    answer = client.post("/api/clusters", json=body, headers=bearer(readonly))
    assert answer.status_code == 403
    assert answer.json()["detail"]["message"] == ("token 'viewer' is readonly: POST /api/clusters needs "
                                                  "an admin token")
    assert client.get("/api/clusters", headers=bearer(readonly)).json() == []
    assert client.post("/api/clusters", json=body, headers=bearer(admin)).status_code == 201
    assert [c["name"] for c in client.get("/api/clusters", headers=bearer(readonly)).json()] == ["c1"]


def test_only_the_digest_is_stored(engine):
    _, url = engine
    token, record = issue_token(url, "readonly", "ci")
    db = Database(url)
    with db.session() as session:
        row = session.scalar(select(ApiToken).where(ApiToken.name == "ci"))
        stored = [str(getattr(row, c.name)) for c in ApiToken.__table__.columns]
    db.dispose()
    assert all(token not in value for value in stored)
    assert row.token_sha256 != token and len(row.token_sha256) == 64
    assert record.prefix == token[:12] and record.role == "readonly"
