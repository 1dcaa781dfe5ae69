"""A readonly token may see a VM's plan (a POST that only reads) and nothing else it could
change: the auth layer decides by route template (ferry.engine.tokens.READ_POSTS)."""
from __future__ import annotations

import re

from ferry.engine import tokens
from ferry.engine.services.tokens import issue_token
from tests.unit.engine.test_forecast_api import running_vm
from tests.unit.engine.test_operations_api import api as api  # noqa: F401 - the fixture

WRITE_METHODS = ("post", "put", "patch", "delete")


def readonly_headers(tmp_path, name="viewer") -> dict:
    token = issue_token(f"sqlite:///{tmp_path / 'engine.db'}", "readonly", name)[0]
    return {"Authorization": f"Bearer {token}"}


def test_the_role_rule_by_route_template():
    assert tokens.may("readonly", "POST", "/api/vms/{vm}/plan")
    assert tokens.may("readonly", "GET", None)
    for route in (None, "/api/vms/{vm}/migrate", "/api/vms/{vm}/recommend", "/api/vms/vm1/plan"):
        assert not tokens.may("readonly", "POST", route), route
    assert not tokens.may("readonly", "PUT", "/api/vms/{vm}/plan")
    assert not tokens.may("nobody", "GET", None)
    assert tokens.may("admin", "DELETE", None)


def test_readonly_sees_the_plan_and_its_forecast_like_an_admin(api, tmp_path):  # noqa: F811
    client, world = api
    agent = running_vm(client, world)
    headers = readonly_headers(tmp_path)
    admin = client.post("/api/vms/vm1/plan", json={"to": "h2"}).json()
    r = client.post("/api/vms/vm1/plan", json={"to": "h2"}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["params"] == admin["params"] and r.json()["destination"] == "h2"
    r = client.post("/api/vms/vm1/plan?forecast=true&dirtySeconds=2", json={}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["forecast"]["outcome"] == "converge"
    assert agent.calls[-1][0] == "VM.getDirtyRate"
    # still refused: starting the migration the plan describes; nothing reached the agent
    before = len(agent.calls)
    r = client.post("/api/vms/vm1/migrate", json={"to": "h2"}, headers=headers)
    assert r.status_code == 403 and "POST /api/vms/vm1/migrate needs an admin token" in r.json()["detail"]["message"]
    assert not any(c[0] == "VM.migrate" for c in agent.calls[before:])
    assert client.get("/api/migrations", headers=headers).json() == []
    # a bad body is still named by field for a viewer too, not a 500
    r = client.post("/api/vms/vm1/plan", json={"to": 5}, headers=headers)
    assert r.status_code == 422 and "to" in r.text


def test_every_other_write_route_is_refused_to_readonly(api, tmp_path):  # noqa: F811
    client, _ = api
    headers = readonly_headers(tmp_path, "walker")
    paths = client.get("/openapi.json").json()["paths"]
    refused = 0
    for path, methods in paths.items():
        for method in methods:
            if method not in WRITE_METHODS:
                continue
            concrete = re.sub(r"\{[^}]+\}", "x", path)
            answer = client.request(method.upper(), concrete, json={}, headers=headers)
            if path in tokens.READ_POSTS and method == "post":
                assert answer.status_code != 403, (method, path, answer.text)
                continue
            assert answer.status_code == 403, (method, path, answer.text)
            assert answer.json()["detail"]["reason"] == "read-only token"
            refused += 1
    assert refused >= 20
