"""The drain runner and the maintenance use cases over a real SQLite store and the recording
fake agents of test_orchestrator: states, events, limits, failures, cancel, restart, REST."""
from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from ferry.common.errors import Conflict
from ferry.common.vmspec import VmSpec
from ferry.engine import audit, maintenance
from ferry.engine.db import Database
from ferry.engine.db.records import DrainState, HostStatus
from ferry.engine.drain_runner import DrainRunner
from ferry.engine.monitor import PlacementGuard
from ferry.engine.orchestrator import Orchestrator
from tests.unit.engine.test_orchestrator import RUNNING, World, succeeded


@pytest.fixture
def env(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'engine.db'}")
    db.upgrade()
    world = World()
    with db.unit_of_work() as store:
        store.clusters.create("c", policy="Very large VMs")   # max_migrations 1: one at a time
        for i in (1, 2, 3):
            store.hosts.add(f"h{i}", cluster="c", address=f"127.9.0.{i}", status="UP", link_speed_mbps=10000,
                            capabilities={"zerocopy_migrations": True, "memFree": 8000})
            world.add(f"h{i}", f"127.9.0.{i}")
        for name, mem, fill in (("big", 1024, 900), ("small", 256, 100), ("mid", 512, 300)):
            vm = store.vms.add(VmSpec(name=name, memory_mib=mem, vcpus=1, kernel="/k"), cluster="c", host="h1",
                               status="UP", workload={"fill_mib": fill, "dirty_mib_s": 0})
            world.where[vm.uuid] = "h1"
    orch = Orchestrator(db, guard=PlacementGuard(), agent=world.factory, poll_interval=0.01)
    runner = DrainRunner(db, orch)
    yield db, world, orch, runner
    orch.stop()
    db.dispose()


def drive(db, runner, orch, until, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runner.run_once()
        with db.unit_of_work() as s:
            view = maintenance.view(s, "h1")
        if until(view):
            return view
        time.sleep(0.02)
    raise AssertionError(f"drain not there after {timeout} s: {view}")


def codes(db, host="h1"):
    with db.unit_of_work() as s:
        return [e.code for e in s.events.list(host=host, limit=1000)]


def test_drain_moves_every_vm_shortest_first_and_ends_in_maintenance(env):
    db, world, orch, runner = env
    world.agent("h1").script = [succeeded()]
    with db.unit_of_work() as s:
        d = maintenance.start(s, "h1", reason="kernel update")
        assert s.hosts.get("h1").status is HostStatus.PREPARING_FOR_MAINTENANCE
    assert [i["vm"] for i in sorted(d.items, key=lambda i: i["forecast_s"])] == ["small", "mid", "big"]
    view = drive(db, runner, orch, lambda v: v["state"] == "DONE")
    assert view["host_status"] == "MAINTENANCE" and view["vms_done"] == view["vms_total"] == 3
    with db.unit_of_work() as s:
        assert {v.name: v.host for v in s.vms.list()} .keys() == {"big", "small", "mid"}
        assert all(v.host in ("h2", "h3") for v in s.vms.list())
        started = sorted(s.migrations.list(limit=10), key=lambda m: m.created_at)
    assert [m.vm for m in started] == ["small", "mid", "big"]      # the forecast's order
    assert codes(db)[0] == audit.USER_VDS_MAINTENANCE.code and codes(db)[-1] == audit.VDS_MAINTENANCE.code


def test_a_host_in_maintenance_takes_no_migration_and_no_new_vm(env):
    db, world, orch, runner = env
    with db.unit_of_work() as s:
        s.hosts.update("h2", status=HostStatus.MAINTENANCE)
        s.vms.add(VmSpec(name="new", memory_mib=256, vcpus=1, kernel="/k"), cluster="c")
    with pytest.raises(Conflict, match="MAINTENANCE"):
        orch.migrate("small", to="h2")
    record = orch.migrate("small")
    assert record.destination == "h3"
    from ferry.engine.services.vms import VmLifecycle
    with pytest.raises(Conflict, match="MAINTENANCE"):
        VmLifecycle(db, guard=PlacementGuard(), agent=world.factory).start("new", host="h2")


def test_the_source_outgoing_limit_holds_during_the_drain(env):
    db, world, orch, runner = env
    world.agent("h1").script = [RUNNING]
    with db.unit_of_work() as s:
        maintenance.start(s, "h1")
    for _ in range(5):
        runner.run_once()
        time.sleep(0.05)
    with db.unit_of_work() as s:
        assert len(s.migrations.list(active=True)) == 1          # policy max_migrations 1
        view = maintenance.view(s, "h1")
    assert view["vms_running"] == 1 and view["vms_queued"] == 2 and view["running"][0]["vm"] == "small"


def test_a_vm_failing_everywhere_keeps_the_host_preparing_with_an_event_naming_it(env):
    db, world, orch, runner = env
    world.agent("h1").script = [{"state": "failed", "error": "boom"}]
    with db.unit_of_work() as s:
        maintenance.start(s, "h1")
    view = drive(db, runner, orch, lambda v: len(v["stuck"]) == 3)
    assert view["host_status"] == "PREPARING_FOR_MAINTENANCE" and view["eta_seconds"] is None
    assert all("already tried" in s["reason"] for s in view["stuck"])
    assert codes(db).count(audit.VM_MIGRATION_FAILED_DURING_MOVE_TO_MAINTENANCE.code) == 6   # 3 VMs x 2 hosts
    with db.unit_of_work() as s:
        msgs = [e.message for e in s.events.list(host="h1", limit=1000)
                if e.code == audit.USER_VDS_MAINTENANCE_MIGRATION_FAILED.code]
    assert any("VM small" in m for m in msgs)


def test_no_destination_blocks_with_event_1111_and_starts_once_a_host_is_back(env):
    db, world, orch, runner = env
    world.agent("h1").script = [succeeded()]
    with db.unit_of_work() as s:
        s.hosts.update("h2", status=HostStatus.DOWN)
        s.hosts.update("h3", status=HostStatus.MAINTENANCE)
        maintenance.start(s, "h1")
    view = drive(db, runner, orch, lambda v: len(v["stuck"]) == 3)
    assert "h2: host is DOWN" in view["stuck"][0]["reason"] and "h3: host is MAINTENANCE" in view["stuck"][0]["reason"]
    assert codes(db).count(audit.VM_MIGRATION_FAILED_DURING_MOVE_TO_MAINTENANCE_NO_DESTINATION_VDS.code) == 3
    runner.run_once()   # the same reason is not reported again
    assert codes(db).count(audit.VM_MIGRATION_FAILED_DURING_MOVE_TO_MAINTENANCE_NO_DESTINATION_VDS.code) == 3
    with db.unit_of_work() as s:
        s.hosts.update("h2", status=HostStatus.UP)
    assert drive(db, runner, orch, lambda v: v["state"] == "DONE")["host_status"] == "MAINTENANCE"


def test_cancel_drops_the_queued_lets_the_running_finish_and_the_host_goes_up(env):
    db, world, orch, runner = env
    src = world.agent("h1")
    src.script = [RUNNING]
    with db.unit_of_work() as s:
        maintenance.start(s, "h1")
    drive(db, runner, orch, lambda v: v["vms_running"] == 1)
    with db.unit_of_work() as s:
        assert maintenance.cancel(s, "h1").state is DrainState.CANCELLING
    runner.run_once()
    with db.unit_of_work() as s:
        assert s.hosts.get("h1").status is HostStatus.PREPARING_FOR_MAINTENANCE   # one still running
    src.script = [succeeded()]
    view = drive(db, runner, orch, lambda v: v["state"] == "CANCELLED")
    assert view["host_status"] == "UP" and view["vms_done"] == 1
    assert sorted(i["state"] for i in view["items"]) == ["done", "dropped", "dropped"]
    assert audit.FERRY_MAINTENANCE_CANCELLED.code in codes(db)


def test_cancel_with_abort_running_cancels_the_running_migration(env):
    db, world, orch, runner = env
    world.agent("h1").script = [RUNNING]
    with db.unit_of_work() as s:
        maintenance.start(s, "h1")
    drive(db, runner, orch, lambda v: v["vms_running"] == 1)
    with db.unit_of_work() as s:
        maintenance.cancel(s, "h1", abort_running=True)
    view = drive(db, runner, orch, lambda v: v["state"] == "CANCELLED")
    assert view["host_status"] == "UP" and view["vms_done"] == 0
    assert any(c[0] == "VM.migrateCancel" for c in world.agent("h1").calls)


def test_pause_starts_nothing_new_and_resume_goes_on(env):
    db, world, orch, runner = env
    world.agent("h1").script = [succeeded()]
    with db.unit_of_work() as s:
        maintenance.start(s, "h1")
        maintenance.pause(s, "h1")
        with pytest.raises(Conflict, match="PAUSED"):
            maintenance.pause(s, "h1")
    for _ in range(3):
        runner.run_once()
    with db.unit_of_work() as s:
        assert s.migrations.list() == []
        maintenance.resume(s, "h1")
    assert drive(db, runner, orch, lambda v: v["state"] == "DONE")["vms_done"] == 3


def test_a_new_runner_resumes_a_drain_left_by_a_stopped_engine(env):
    db, world, orch, runner = env
    world.agent("h1").script = [RUNNING]
    with db.unit_of_work() as s:
        maintenance.start(s, "h1")
    drive(db, runner, orch, lambda v: v["vms_running"] == 1)
    orch.stop()                                   # the engine goes away mid-drain
    world.agent("h1").script = [succeeded()]
    orch2 = Orchestrator(db, guard=PlacementGuard(), agent=world.factory, poll_interval=0.01)
    orch2.start()                                 # follows the RUNNING migration again
    try:
        view = drive(db, DrainRunner(db, orch2), orch2, lambda v: v["state"] == "DONE")
    finally:
        orch2.stop()
    assert view["host_status"] == "MAINTENANCE" and view["vms_done"] == 3


def test_states_refused_with_a_reason(env):
    db, world, orch, runner = env
    with db.unit_of_work() as s:
        with pytest.raises(Conflict, match="not in MAINTENANCE"):
            maintenance.activate(s, "h1")
        with pytest.raises(Conflict, match="no maintenance in progress"):
            maintenance.cancel(s, "h1")
        maintenance.start(s, "h1")
        with pytest.raises(Conflict, match="already PREPARING_FOR_MAINTENANCE"):
            maintenance.start(s, "h1")
        with pytest.raises(Conflict, match="cancel the maintenance first"):
            maintenance.activate(s, "h1")
        s.hosts.update("h2", status=HostStatus.MAINTENANCE)
        with pytest.raises(Conflict, match="already in MAINTENANCE"):
            maintenance.start(s, "h2")
        assert maintenance.activate(s, "h2").status is HostStatus.UP


def test_rest_routes_answer_with_their_models_and_clear_errors(tmp_path, monkeypatch):
    from ferry.engine.api.app import create_app
    from ferry.engine.services.tokens import issue_token

    url = f"sqlite:///{tmp_path / 'api.db'}"
    app = create_app(url)
    with TestClient(app) as client:
        token = issue_token(url, "admin", "t")[0]
        h = {"Authorization": f"Bearer {token}"}
        client.post("/api/clusters", json={"name": "c"}, headers=h)
        client.post("/api/hosts", json={"name": "h1", "cluster": "c", "address": "127.9.0.1", "status": "UP"},
                    headers=h)
        r = client.post("/api/hosts/nope/maintenance", json={}, headers=h)
        assert r.status_code == 404 and "nope" in r.json()["detail"]["message"]
        r = client.post("/api/hosts/h1/maintenance", json={"order": "random"}, headers=h)
        assert r.status_code == 422 and r.json()["detail"]["field"] == "order"
        r = client.post("/api/hosts/h1/maintenance", json={"reason": "disk"}, headers=h)
        assert r.status_code == 202 and r.json()["host_status"] == "PREPARING_FOR_MAINTENANCE"
        assert client.post("/api/hosts/h1/maintenance", json={}, headers=h).status_code == 409
        assert client.get("/api/hosts/h1/maintenance", headers=h).json()["vms_total"] == 0
        r = client.post("/api/hosts/h1/maintenance/cancel", json={"abort_running": "x"}, headers=h)
        assert r.status_code == 422 and r.json()["detail"]["field"] == "abort_running"
        assert client.post("/api/hosts/h1/activate", json={}, headers=h).status_code == 409
        r = client.post("/api/migrations/nope/force-complete", json={}, headers=h)
        assert r.status_code == 404


def test_a_stopping_engine_starts_nothing_and_counts_no_host_as_tried(env):
    """SIGTERM (issue 11): the orchestrator refuses new work; the drain must not count the refused
    destination against the VM's 3 hosts, so the next engine starts it from the queue as it was."""
    db, world, orch, runner = env
    with db.unit_of_work() as s:
        drain_id = maintenance.start(s, "h1").id
    orch.stop()
    runner.run_once()
    with db.unit_of_work() as s:
        assert s.migrations.list(limit=10) == []
        assert s.hosts.get("h1").status is HostStatus.PREPARING_FOR_MAINTENANCE
        assert [i.get("tried") or [] for i in s.drains.get(drain_id).items] == [[], [], []]


def test_pause_and_resume_switch_only_from_their_own_state(env):
    db, _world, _orch, _runner = env
    with db.unit_of_work() as s:
        maintenance.start(s, "h1")
        assert maintenance.pause(s, "h1", user="ann").state is DrainState.PAUSED
        with pytest.raises(Conflict, match="is PAUSED; only an ACTIVE drain can be paused"):
            maintenance.pause(s, "h1")
        assert maintenance.resume(s, "h1").state is DrainState.ACTIVE
        with pytest.raises(Conflict, match="is ACTIVE; only a PAUSED drain can be resumed"):
            maintenance.resume(s, "h1")
    assert codes(db)[-2:] == [audit.FERRY_DRAIN_PAUSED.code, audit.FERRY_DRAIN_RESUMED.code]
