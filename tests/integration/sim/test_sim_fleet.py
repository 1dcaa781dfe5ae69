"""20 simulated hosts (ferry.sim) and a real engine on SQLite: a migration asked for through the
REST API runs end to end (engine -> source agent -> destination agent's VM.migrationCreate, all
over mutual TLS with host certificates from the engine CA) and ends with the figures the
pre-copy model gives for that VM, bandwidth and schedule.

The simulator is a test double for scale only; this test checks that the double is faithful to
the real agent protocol and to the model, which the scale benchmark relies on. Real migrations
are tested against the real lab in tests/integration/agent and tests/e2e.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from ferry.forecast import ForecastInputs, forecast

FINAL = ("SUCCEEDED", "FAILED", "CANCELLED", "ABORTED")
LAB = int(os.environ.get("FERRY_LAB_ID") or 0)


@pytest.fixture(scope="module")
def sim_engine(tmp_path_factory):
    from ferry.client.engine_client import EngineClient
    from ferry.engine.db import Database, upgrade_database
    from ferry.engine.process import free_port, start_engine
    from ferry.engine.services.tokens import issue_token
    from ferry.lab import procs
    from ferry.sim import control

    if control.running_pids(LAB):
        pytest.skip(f"a simulated fleet of lab {LAB} is already running (ferry lab sim --down first)")
    running = control.start(20, 40, lab=LAB, processes=2)
    proc = None
    try:
        tmp = tmp_path_factory.mktemp("sim-engine")
        url = f"sqlite:///{tmp / 'engine.db'}"
        upgrade_database(url)
        assert control.import_inventory(Database(url), json.loads(running.inventory_path.read_text())) == (20, 40)
        token = issue_token(url, "admin", "sim")[0]
        port = free_port()
        proc = start_engine(url, Path(tmp / "engine.log"), port=port, monitor_interval=2)
        client = EngineClient(f"http://127.0.0.1:{port}", token, timeout=30)
        yield client
        client.close()
    finally:
        if proc is not None:
            procs.stop(proc.pid, timeout=15)
            proc.wait(timeout=5)
        control.stop(LAB)


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what} not within {timeout:.0f} s")


def test_every_simulated_host_comes_up_with_its_vms_placed(sim_engine):
    hosts = _wait(lambda: (hs := sim_engine.get("/api/hosts")) and all(h["status"] == "UP" for h in hs) and hs,
                  60, "all 20 hosts UP")
    assert len(hosts) == 20
    assert {h["zerocopy"] for h in hosts} == {"YES"}  # the simulated hosts pass every zero-copy check
    vms = sim_engine.get("/api/vms")
    assert len(vms) == 40 and all(v["status"] == "UP" for v in vms)


def test_a_rest_migration_completes_with_the_models_figures(sim_engine):
    from ferry.sim.fleet import sim_vm

    _wait(lambda: all(h["status"] == "UP" for h in sim_engine.get("/api/hosts")), 60, "all hosts UP")
    vm = sim_vm(LAB, 1)    # 2 GiB, 1228.8 MiB touched, dirtying 7 MiB/s
    name = vm.name
    before = sim_engine.get(f"/api/vms/{name}")["host"]
    target = next(h["name"] for h in sim_engine.get("/api/hosts") if h["name"] != before)
    m = sim_engine.post(f"/api/vms/{name}/migrate", {"to": target})
    m = _wait(lambda: (r := sim_engine.get(f"/api/migrations/{m['id']}"))["state"] in FINAL and r, 120,
              "the migration's end")
    assert m["state"] == "SUCCEEDED", m
    params = m["plan"]["params"]
    init_ms = int(params["convergenceSchedule"]["init"][0]["params"][0])
    want = forecast(ForecastInputs(memory_mib=vm.memory_mib, touched_mib=vm.touched_mib,
                                   dirty_rate_mibs=vm.dirty_rate_mibs, bandwidth_mibs=params["maxBandwidth"],
                                   init_downtime_ms=init_ms, dirty_pattern=vm.dirty_pattern))
    result = m["result"]
    assert want.outcome == "converge"
    assert result["duration_ms"] / 1000 == pytest.approx(want.total_seconds, rel=0.15)
    assert result["downtime_ms"] == pytest.approx(want.downtime_ms, abs=2)
    assert result["bytes"] >= vm.touched_mib * (1 << 20)
    assert result["hosts_tried"] == [target]
    moved = _wait(lambda: (v := sim_engine.get(f"/api/vms/{name}"))["host"] == target and v, 30,
                  "the inventory placing the VM on its destination")
    assert moved["status"] == "UP"
