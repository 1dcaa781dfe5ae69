"""POST /api/vms/{vm}/plan?forecast=true and the `eta` of GET /api/migrations/{id}, over the real
app and store with the agents replaced by the recording fake of test_orchestrator."""
from __future__ import annotations

import time

import pytest

from ferry.common.jsonrpc import agent_error
from tests.unit.engine.test_operations_api import answer_host_verbs
from tests.unit.engine.test_operations_api import api as api  # noqa: F401 - the fixture
from tests.unit.engine.test_orchestrator import succeeded

MIB = 1 << 20
DIRTY_ANSWER = {"vmID": "u", "seconds": 2, "mode": "page-sampling", "dirtyRateMiBs": 0.0,
                "estimate": {"measuredMiBs": 0.0, "estimateMiBs": 0.0, "lowMiBs": 0.0, "highMiBs": 0.0,
                             "reason": "idle"},
                "memoryMiB": 512.0, "touchedMiB": 256.0, "touchedSource": "qemu-vmrss"}


def running_vm(client, world, dirty=None):
    answer_host_verbs(world, {})
    for h in ("h1", "h2"):
        client.post(f"/api/hosts/{h}/refresh")
    client.post("/api/vms/vm1/start", json={"host": "h1"})
    agent = world.agent("h1")
    inner = agent.call

    def call(method, params):
        if method == "VM.getDirtyRate":
            agent.calls.append((method, params))
            if isinstance(dirty, Exception):
                raise dirty
            return dirty or DIRTY_ANSWER
        return inner(method, params)

    agent.call = call
    return agent


def test_plan_with_forecast_measures_on_the_source_agent_and_answers_the_forecast_object(api):  # noqa: F811
    client, world = api
    agent = running_vm(client, world)
    r = client.post("/api/vms/vm1/plan?forecast=true&dirtySeconds=3", json={})
    assert r.status_code == 200, r.text
    body = r.json()
    assert ("VM.getDirtyRate", {"vmID": agent.calls[-1][1]["vmID"], "seconds": 3}) == agent.calls[-1]
    fc = body["forecast"]
    assert set(fc) >= {"outcome", "totalSeconds", "downtimeMs", "iterations", "range", "inputs", "steps"}
    # an idle guest with 256 MiB touched; AUTO bandwidth without link speeds sends no cap, so the
    # agent's default 52 MiB/s applies: touched / 52 + the fixed 1.5 s
    assert "maxBandwidth" not in body["params"]
    assert fc["outcome"] == "converge" and fc["inputs"]["bandwidthSource"] == "cap"
    assert fc["inputs"]["bandwidthMiBs"] == 52
    assert fc["totalSeconds"] == pytest.approx(256 / 52 + 1.5, abs=0.01)
    assert fc["inputs"]["touchedMiB"] == 256.0 and fc["inputs"]["bandwidthSamples"] == 0


def test_plan_without_forecast_does_not_measure(api):  # noqa: F811
    client, world = api
    agent = running_vm(client, world)
    body = client.post("/api/vms/vm1/plan", json={}).json()
    assert body.get("forecast") is None and not any(c[0] == "VM.getDirtyRate" for c in agent.calls)


def test_agent_refusing_to_measure_is_a_conflict_saying_why(api):  # noqa: F811
    client, world = api
    running_vm(client, world, dirty=agent_error("migrationInProgress", "VM u is migrating"))
    r = client.post("/api/vms/vm1/plan?forecast=true", json={})
    assert r.status_code == 409 and "migrating" in r.text


def test_bad_window_names_the_field(api):  # noqa: F811
    client, world = api
    running_vm(client, world)
    r = client.post("/api/vms/vm1/plan?forecast=true&dirtySeconds=0", json={})
    assert r.status_code == 422 and "dirtySeconds" in r.text


def test_running_migration_carries_an_eta_from_its_last_sample_and_none_once_ended(api):  # noqa: F811
    client, world = api
    agent = running_vm(client, world)
    sample = {"state": "running", "dataTotal": 512 * MIB, "dataRemaining": 100 * MIB, "memoryTotal": 512 * MIB,
              "memoryRemaining": 100 * MIB, "bandwidth": 50 * MIB, "dirtyRate": 0, "iteration": 1,
              "timeElapsed": 3000, "maxDowntime": 300}
    agent.script = [sample]
    mid = client.post("/api/vms/vm1/migrate", json={}).json()["id"]
    deadline = time.monotonic() + 10
    while not (m := client.get(f"/api/migrations/{mid}").json()).get("figures", {}) or \
            m["figures"].get("data_remaining") is None:
        assert time.monotonic() < deadline, m
        time.sleep(0.02)
    # 100 MiB left at 50 MiB/s, nothing dirtied: 2 s, plus the 0.9 of the fixed 1.5 s that
    # comes after QEMU's clock (confirm): 3.35 s
    assert m["eta"] == {"seconds": 3.4, "outcome": "converge"}
    assert client.get("/api/migrations").json()[0]["eta"]["outcome"] == "converge"
    agent.script = [succeeded()]
    while (m := client.get(f"/api/migrations/{mid}").json())["state"] != "SUCCEEDED":
        assert time.monotonic() < deadline, m
        time.sleep(0.02)
    assert m["eta"] is None
