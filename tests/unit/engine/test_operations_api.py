"""The REST routes that act on hosts (migrate, cancel, start/stop, refresh), over the real app and
store with the agents replaced by the recording fake of test_orchestrator."""
from __future__ import annotations

import time
import warnings

import pytest

from ferry.engine.api import create_app
from ferry.engine.services.tokens import issue_token
from tests.unit.engine.test_orchestrator import RUNNING, World, succeeded


@pytest.fixture
def api(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    url = f"sqlite:///{tmp_path / 'engine.db'}"
    app = create_app(url, poll_interval=0.01)
    world = World()
    for part in (app.state.orchestrator, app.state.monitor, app.state.vm_lifecycle):
        part.agent = world.factory
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {issue_token(url, 'admin', 'tests')[0]}"
        client.post("/api/clusters", json={"name": "c", "policy": "Very large VMs"})
        for i in (1, 2):
            world.add(f"h{i}", f"127.9.0.{i}")
            client.post("/api/hosts", json={"name": f"h{i}", "cluster": "c", "address": f"127.9.0.{i}"})
        client.post("/api/vms", json={"name": "vm1", "cluster": "c", "memory_mib": 512, "vcpus": 1,
                                      "kernel": "vmlinuz"})
        yield client, world


def answer_host_verbs(world, vms_on: dict[str, list[dict]]):
    for agent in world.agents.values():
        original = agent.call

        def call(method, params, agent=agent, original=original):
            """Host.* and VM.create/destroy answers on top of the migration fake."""
            if not agent.reachable or method.startswith("VM.") and method not in ("VM.create", "VM.destroy"):
                return original(method, params)
            if method == "Host.getCapabilities":
                agent.calls.append((method, params))
                return {"hostname": agent.name, "zerocopy_migrations": True}
            if method == "Host.getStats":
                return {"memFree": 4000}
            if method == "Host.getVMList":
                return {"vms": vms_on.get(agent.name, [])}
            if method == "VM.create":
                agent.calls.append((method, params))
                world.where[params["spec"]["uuid"]] = agent.name
                return {"vmID": params["spec"]["uuid"], "status": "Up"}
            if method == "VM.destroy":
                agent.calls.append((method, params))
                world.where.pop(params["vmID"], None)
                return {"status": "Down"}
            return original(method, params)

        agent.call = call


def test_refresh_marks_hosts_up_with_capabilities_or_down(api):
    client, world = api
    answer_host_verbs(world, {})
    h1 = client.post("/api/hosts/h1/refresh").json()
    assert (h1["status"], h1["zerocopy"], h1["capabilities"]["memFree"]) == ("UP", "YES", 4000)
    world.agent("h2").reachable = False
    assert client.post("/api/hosts/h2/refresh").json()["status"] == "DOWN"
    assert client.post("/api/hosts/nope/refresh").status_code == 404


def test_start_migrate_follow_and_stop_through_rest(api):
    client, world = api
    answer_host_verbs(world, {})
    for h in ("h1", "h2"):
        client.post(f"/api/hosts/{h}/refresh")
    vm = client.post("/api/vms/vm1/start", json={"host": "h1"}).json()
    assert (vm["host"], vm["status"]) == ("h1", "UP")
    assert world.agent("h1").calls[-1][0] == "VM.create"
    world.agent("h1").script = [RUNNING, RUNNING, succeeded()]
    r = client.post("/api/vms/vm1/migrate", json={"user": "carol"})
    assert r.status_code == 202 and r.json()["destination"] == "h2"
    mid = r.json()["id"]
    deadline = time.monotonic() + 10
    while (m := client.get(f"/api/migrations/{mid}").json())["state"] != "SUCCEEDED":
        assert time.monotonic() < deadline, m
        time.sleep(0.02)
    assert m["progress"] == 100 and m["result"]["flags"] and m["attempts"][0]["destination"] == "h2"
    assert client.get("/api/vms/vm1").json()["host"] == "h2"
    assert client.post(f"/api/migrations/{mid}/cancel").status_code == 409
    vm = client.post("/api/vms/vm1/stop").json()
    assert (vm["host"], vm["status"]) == (None, "DOWN")
    assert world.agent("h2").calls[-1][0] == "VM.destroy"


@pytest.mark.parametrize("path, body, status, field", [
    ("/api/vms/vm1/migrate", {}, 409, None),                       # not running
    ("/api/vms/nope/migrate", {}, 404, None),
    ("/api/vms/vm1/start", {"host": "h9"}, 422, "host"),
    ("/api/vms/vm1/start", {"hots": "h1"}, 422, "hots"),
    ("/api/vms/vm1/stop", None, 409, None),
    ("/api/migrations/nope/cancel", None, 404, None),
])
def test_bad_requests_name_the_field_or_say_why(api, path, body, status, field):
    client, _ = api
    r = client.post(path, json=body) if body is not None else client.post(path)
    assert r.status_code == status, r.text
    assert r.json()["detail"]["field"] == field


def test_migrate_to_bad_host_names_the_field(api):
    client, world = api
    answer_host_verbs(world, {})
    for h in ("h1", "h2"):
        client.post(f"/api/hosts/{h}/refresh")
    client.post("/api/vms/vm1/start", json={"host": "h1"})
    r = client.post("/api/vms/vm1/migrate", json={"to": "h1"})
    assert r.status_code == 422 and r.json()["detail"]["field"] == "to"
    r = client.post("/api/vms/vm1/migrate", json={"policy": "Fastest"})
    assert r.status_code == 422 and r.json()["detail"]["field"] == "policy"
