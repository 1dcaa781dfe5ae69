"""POST /api/migrations/{id}/speed and GET /api/whoami over the real app and store, with the
agents replaced by the recording fake of test_orchestrator (the lab test drives a real agent)."""
from __future__ import annotations

import time

import pytest

from ferry.common.jsonrpc import TRANSPORT_ERROR, JsonRpcError, agent_error
from ferry.engine.services.tokens import issue_token
from tests.unit.engine.test_operations_api import answer_host_verbs, api  # noqa: F401 - the fixture
from tests.unit.engine.test_orchestrator import RUNNING, succeeded


def change_params_answers(agent, error: JsonRpcError | None = None):
    """Let the fake agent answer VM.migrateChangeParams (recorded in agent.calls)."""
    original = agent.call

    def call(method, params):
        if method != "VM.migrateChangeParams":
            return original(method, params)
        agent.calls.append((method, params))
        if error is not None:
            raise error
        return {"status": {"code": 0, "message": f"maxBandwidth set to {params['params']['maxBandwidth']} MiB/s"}}

    agent.call = call


def running_migration(client, world) -> dict:
    answer_host_verbs(world, {})
    for h in ("h1", "h2"):
        client.post(f"/api/hosts/{h}/refresh")
    client.post("/api/vms/vm1/start", json={"host": "h1"})
    world.agent("h1").script = [RUNNING]
    m = client.post("/api/vms/vm1/migrate", json={}).json()
    deadline = time.monotonic() + 10
    while (m := client.get(f"/api/migrations/{m['id']}").json())["state"] != "RUNNING":
        assert time.monotonic() < deadline, m
        time.sleep(0.02)
    return m


def test_speed_sends_migrate_change_params_to_the_source_agent(api):
    client, world = api
    m = running_migration(client, world)
    change_params_answers(world.agent("h1"))
    r = client.post(f"/api/migrations/{m['id']}/speed", json={"mibs": 25})
    assert r.status_code == 200, r.text
    assert r.json()["max_bandwidth_mibs"] == 25 and r.json()["source"] == "h1"
    vm_uuid = client.get("/api/vms/vm1").json()["uuid"]
    sent = [p for name, p in world.agent("h1").calls if name == "VM.migrateChangeParams"]
    assert sent == [{"vmID": vm_uuid, "params": {"maxBandwidth": 25}}]
    assert not any(name == "VM.migrateChangeParams" for name, _ in world.agent("h2").calls)


@pytest.mark.parametrize("body, reason_part", [
    ({"mibs": 0}, "greater than or equal to 1"),
    ({"mibs": -5}, "greater than or equal to 1"),
    ({"mibs": "fast"}, "integer"),
    ({"mibs": 2.5}, "integer"),
    ({"mibs": True}, "integer"),
    ({"mibs": 10**9}, "less than or equal to"),
    ({}, "Field required"),
    ({"mibs": 5, "speed": 1}, "unknown field"),
])
def test_bad_mibs_is_422_naming_the_field(api, body, reason_part):
    client, world = api
    m = running_migration(client, world)
    change_params_answers(world.agent("h1"))
    r = client.post(f"/api/migrations/{m['id']}/speed", json=body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail["field"] == ("speed" if "speed" in body else "mibs")
    assert reason_part in detail["reason"]
    assert not any(name == "VM.migrateChangeParams" for name, _ in world.agent("h1").calls)


def test_unknown_migration_is_404(api):
    client, _ = api
    r = client.post("/api/migrations/no-such-id/speed", json={"mibs": 10})
    assert r.status_code == 404 and "no-such-id" in r.json()["detail"]["message"]


def test_ended_migration_is_409_and_the_agent_is_not_asked(api):
    client, world = api
    answer_host_verbs(world, {})
    for h in ("h1", "h2"):
        client.post(f"/api/hosts/{h}/refresh")
    client.post("/api/vms/vm1/start", json={"host": "h1"})
    world.agent("h1").script = [RUNNING, succeeded()]
    m = client.post("/api/vms/vm1/migrate", json={}).json()
    deadline = time.monotonic() + 10
    while (m := client.get(f"/api/migrations/{m['id']}").json())["state"] != "SUCCEEDED":
        assert time.monotonic() < deadline, m
        time.sleep(0.02)
    change_params_answers(world.agent("h1"))
    r = client.post(f"/api/migrations/{m['id']}/speed", json={"mibs": 10})
    assert r.status_code == 409 and "SUCCEEDED" in r.json()["detail"]["message"]
    assert not any(name == "VM.migrateChangeParams" for name, _ in world.agent("h1").calls)


def test_agent_no_longer_migrating_is_409_and_unreachable_agent_is_502(api):
    client, world = api
    m = running_migration(client, world)
    change_params_answers(world.agent("h1"), agent_error("migCancelErr", "Migration not in progress"))
    r = client.post(f"/api/migrations/{m['id']}/speed", json={"mibs": 10})
    assert r.status_code == 409 and "no longer migrating" in r.json()["detail"]["message"]
    world.agent("h1").call = lambda method, params: (_ for _ in ()).throw(
        JsonRpcError(TRANSPORT_ERROR, "connection refused"))
    r = client.post(f"/api/migrations/{m['id']}/speed", json={"mibs": 10})
    assert r.status_code == 502 and "connection refused" in r.json()["detail"]["message"]


def test_readonly_token_may_not_set_speed_but_sees_itself_in_whoami(api, tmp_path):
    client, world = api
    m = running_migration(client, world)
    change_params_answers(world.agent("h1"))
    assert client.get("/api/whoami").json() == {"name": "tests", "role": "admin", "may_change": True}
    readonly = issue_token(f"sqlite:///{tmp_path / 'engine.db'}", "readonly", "viewer")[0]
    headers = {"Authorization": f"Bearer {readonly}"}
    assert client.get("/api/whoami", headers=headers).json() == {"name": "viewer", "role": "readonly",
                                                                 "may_change": False}
    r = client.post(f"/api/migrations/{m['id']}/speed", json={"mibs": 10}, headers=headers)
    assert r.status_code == 403
    assert not any(name == "VM.migrateChangeParams" for name, _ in world.agent("h1").calls)
    assert client.get("/api/whoami", headers={"Authorization": "Bearer nope"}).status_code == 401
