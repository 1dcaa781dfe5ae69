"""GET /api/migrations/{id}/wait: the record once it changes (a long poll), over the real app and
store with the recording fake agents of test_orchestrator."""
from __future__ import annotations

import time

from tests.unit.engine.test_operations_api import answer_host_verbs, api  # noqa: F401 - fixture
from tests.unit.engine.test_orchestrator import RUNNING, succeeded


def _running_vm(client, world):
    answer_host_verbs(world, {})
    for h in ("h1", "h2"):
        client.post(f"/api/hosts/{h}/refresh")
    client.post("/api/vms/vm1/start", json={"host": "h1"})


def test_wait_answers_each_change_until_the_end(api):
    client, world = api
    _running_vm(client, world)
    world.agent("h1").script = [RUNNING, RUNNING, succeeded()]
    m = client.post("/api/vms/vm1/migrate", json={}).json()
    t0 = time.monotonic()
    answers = 0
    while m["state"] not in ("SUCCEEDED", "FAILED", "CANCELLED", "ABORTED"):
        before = m["updated_at"]
        m = client.get(f"/api/migrations/{m['id']}/wait", params={"since": before, "timeout": 5}).json()
        assert m["updated_at"] != before or m["state"] == "SUCCEEDED"
        answers += 1
        assert answers < 20
    assert m["state"] == "SUCCEEDED" and time.monotonic() - t0 < 4


def test_wait_without_a_change_returns_the_same_record_at_its_timeout(api):
    client, world = api
    _running_vm(client, world)
    world.agent("h1").script = [RUNNING]                   # runs, and nothing changes
    m = client.post("/api/vms/vm1/migrate", json={}).json()
    deadline = time.monotonic() + 5
    while (m := client.get(f"/api/migrations/{m['id']}").json())["state"] != "RUNNING" or not m["figures"]:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.1)
    m = client.get(f"/api/migrations/{m['id']}").json()
    t0 = time.monotonic()
    again = client.get(f"/api/migrations/{m['id']}/wait", params={"since": m["updated_at"], "timeout": 0.4}).json()
    assert 0.35 <= time.monotonic() - t0 < 3
    assert again["updated_at"] == m["updated_at"] and again["state"] == "RUNNING"
    assert client.get(f"/api/migrations/{m['id']}/wait").json()["id"] == m["id"]    # no since: at once
    client.post(f"/api/migrations/{m['id']}/cancel", json={})


def test_wait_refuses_a_timeout_beyond_its_limit_and_unknown_migrations(api):
    client, _ = api
    r = client.get("/api/migrations/00000000-0000-0000-0000-000000000000/wait", params={"timeout": 60})
    assert r.status_code == 422 and "timeout" in r.text
    r = client.get("/api/migrations/00000000-0000-0000-0000-000000000000/wait", params={"timeout": 1})
    assert r.status_code == 404
