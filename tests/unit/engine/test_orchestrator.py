"""The orchestrator over a real SQLite store and a recording fake of the agents' JSON-RPC verbs.

Each fake agent answers VM.getMigrationStatus from a script (one status per poll); a migration's
last status decides where the VM is afterwards. The lab e2e tests do the same against real agents.
"""
from __future__ import annotations

import threading
import time

import pytest

from ferry.common.errors import Conflict, InvalidInput
from ferry.common.jsonrpc import TRANSPORT_ERROR, JsonRpcError, agent_error
from ferry.common.vmspec import VmSpec
from ferry.engine.audit import (
    FERRY_MIGRATION_PLAN_ADJUSTED,
    VM_CANCEL_MIGRATION,
    VM_MIGRATION_ABORT,
    VM_MIGRATION_DONE,
    VM_MIGRATION_FAILED,
    VM_MIGRATION_NO_VDS_TO_MIGRATE_TO,
    VM_MIGRATION_START,
    VM_MIGRATION_TRYING_RERUN,
)
from ferry.engine.db import Database, Store
from ferry.engine.monitor import PlacementGuard
from ferry.engine.orchestrator import Orchestrator

RUNNING = {"state": "running", "dataTotal": 100, "dataRemaining": 50, "iteration": 1, "bandwidth": 10}


def succeeded(**extra):
    return {"state": "succeeded", "totalTime": 1500, "downtime": 40, "bytesTransferred": 2**30, "iteration": 3,
            "flags": ["VIR_MIGRATE_LIVE", "VIR_MIGRATE_PARALLEL", "VIR_MIGRATE_ZEROCOPY"],
            "typedParams": {"parallel.connections": 2}, **extra}


class FakeAgent:
    def __init__(self, name: str, world: World):
        self.name, self.world = name, world
        self.calls: list[tuple[str, dict]] = []
        self.script: list[dict] = []
        self.reachable = True
        self.migrate_error: JsonRpcError | None = None
        self.cancel_requested = threading.Event()
        self.ended: dict[str, dict] = {}      # vm -> the final status of its last job (libvirt's job is over)

    def call(self, method: str, params: dict):
        self.calls.append((method, params))
        if not self.reachable:
            raise JsonRpcError(TRANSPORT_ERROR, f"{self.name}: connection refused")
        vm_id = params.get("vmID")
        if method == "VM.migrate":
            if self.migrate_error:
                raise self.migrate_error
            self.world.migrating[vm_id] = (self, params["params"]["dst"])
            self.ended.pop(vm_id, None)
            return {"status": {"code": 0}}
        if method == "VM.getMigrationStatus":
            if vm_id in self.ended:           # asked again after the job ended: the same end
                return self.ended[vm_id]
            if self.cancel_requested.is_set():
                return self._end(vm_id, {"state": "cancelled", "error": "operation aborted: by user"})
            status = self.script.pop(0) if len(self.script) > 1 else self.script[0]
            return self._end(vm_id, status) if status["state"] in ("succeeded", "failed", "cancelled", "aborted") \
                else status
        if method == "VM.migrateCancel":
            self.cancel_requested.set()
            return {"status": {"code": 0}}
        if method == "VM.getStats":
            if self.world.where.get(vm_id) != self.name:
                raise agent_error("noVM", "no such VM")
            return {"status": "Up"}
        raise AssertionError(method)

    def _end(self, vm_id, status):
        self.ended[vm_id] = status
        _, dst = self.world.migrating.pop(vm_id, (None, None))
        if status["state"] == "succeeded" and dst:
            self.world.where[vm_id] = self.world.by_address[dst]
        return status


class World:
    def __init__(self):
        self.agents: dict[str, FakeAgent] = {}
        self.where: dict[str, str] = {}
        self.migrating: dict[str, tuple] = {}
        self.by_address: dict[str, str] = {}

    def add(self, name: str, address: str) -> FakeAgent:
        self.agents[f"https://{address}:54321/"] = FakeAgent(name, self)
        self.by_address[address] = name
        return self.agents[f"https://{address}:54321/"]

    def factory(self, url: str) -> FakeAgent:
        return self.agents[url]

    def agent(self, name: str) -> FakeAgent:
        return next(a for a in self.agents.values() if a.name == name)


def seed_world(db: Database) -> tuple[World, str]:
    """Cluster c (Very large VMs) with hosts h1-h3, zero-copy capable, and vm1 (1 GiB) on h1, both
    in the database and in a World of fake agents; returns the world and vm1's uuid."""
    world = World()
    with db.unit_of_work() as store:
        store.clusters.create("c", policy="Very large VMs")
        for i in (1, 2, 3):
            store.hosts.add(f"h{i}", cluster="c", address=f"127.9.0.{i}", status="UP", link_speed_mbps=10000,
                           capabilities={"zerocopy_migrations": True, "memFree": 8000})
            world.add(f"h{i}", f"127.9.0.{i}")
        vm = store.vms.add(VmSpec(name="vm1", memory_mib=1024, vcpus=2, kernel="/k"), cluster="c", host="h1")
    world.where[vm.uuid] = "h1"
    return world, vm.uuid


@pytest.fixture
def env(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'engine.db'}")
    db.upgrade()
    world, uuid = seed_world(db)
    orch = Orchestrator(db, guard=PlacementGuard(), agent=world.factory, poll_interval=0.01)
    yield db, world, orch, uuid
    orch.stop()
    db.dispose()


def wait_final(db, migration_id, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.unit_of_work() as s:
            m = s.migrations.get(migration_id)
        if not m.active:
            return m
        time.sleep(0.01)
    raise AssertionError(f"still {m.state}")


def events(db, migration_id):
    with db.unit_of_work() as s:
        return s.events.list(migration_id=migration_id)


def vm_record(db):
    with db.unit_of_work() as s:
        return s.vms.get("vm1")


def test_success_sends_the_plan_moves_the_vm_and_records_events(env):
    db, world, orch, uuid = env
    world.agent("h1").script = [RUNNING, RUNNING, succeeded()]
    m = orch.migrate("vm1", to="h2", user="alice")
    assert m.state == "PENDING" and m.destination == "h2"
    final = wait_final(db, m.id)
    assert final.state == "SUCCEEDED" and final.progress == 100
    method, params = world.agent("h1").calls[0]
    assert method == "VM.migrate" and params["vmID"] == uuid
    assert params["params"]["zerocopy"] is True and params["params"]["dst"] == "127.9.0.2"
    assert final.result["flags"][-1] == "VIR_MIGRATE_ZEROCOPY" and final.result["downtime_ms"] == 40
    assert final.result["explanation"] == final.plan["explanation"] != []
    vm = vm_record(db)
    assert (vm.host, vm.status.value) == ("h2", "UP")
    codes = [e.code for e in events(db, m.id)]
    assert codes == [VM_MIGRATION_START.code, FERRY_MIGRATION_PLAN_ADJUSTED.code, VM_MIGRATION_DONE.code]
    assert "User: alice" in events(db, m.id)[0].message
    polls = [c for c in world.agent("h1").calls if c[0] == "VM.getMigrationStatus"]
    assert len(polls) >= 3


def test_failure_with_vm_on_source_reruns_elsewhere_excluding_tried_hosts(env):
    db, world, orch, uuid = env
    world.agent("h1").script = [RUNNING, {"state": "failed", "error": "qemu died"}, RUNNING, succeeded()]
    m = orch.migrate("vm1")                        # no --to: reruns allowed
    first = m.destination
    final = wait_final(db, m.id)
    assert final.state == "SUCCEEDED"
    assert [a["destination"] for a in final.attempts][0] == first
    assert final.destination != first and final.destination != "h1"
    sent = [c[1]["params"]["dst"] for c in world.agent("h1").calls if c[0] == "VM.migrate"]
    assert len(sent) == 2 and sent[0] != sent[1]
    codes = [e.code for e in events(db, m.id)]
    assert codes.count(VM_MIGRATION_TRYING_RERUN.code) == 1 and codes[-1] == VM_MIGRATION_DONE.code
    assert "qemu died" in next(e.message for e in events(db, m.id) if e.code == VM_MIGRATION_TRYING_RERUN.code)


def test_no_host_left_ends_failed_with_no_vds_event_and_vm_on_source(env):
    db, world, orch, uuid = env
    world.agent("h1").script = [{"state": "failed", "error": "broken pipe"}]
    m = orch.migrate("vm1")
    final = wait_final(db, m.id)
    assert final.state == "FAILED" and final.error == "broken pipe"
    assert len(final.attempts) == 2              # h2 and h3: the source does not count as a destination
    codes = [e.code for e in events(db, m.id)]
    assert VM_MIGRATION_NO_VDS_TO_MIGRATE_TO.code in codes and codes[-1] == VM_MIGRATION_FAILED.code
    vm = vm_record(db)
    assert (vm.host, vm.status.value) == ("h1", "UP")


def test_pinned_destination_is_not_rerun(env):
    db, world, orch, uuid = env
    world.agent("h1").script = [{"state": "failed", "error": "nope"}]
    final = wait_final(db, orch.migrate("vm1", to="h2").id)
    assert final.state == "FAILED" and len(final.attempts) == 1
    assert final.result["no_rerun_because"] == "the destination was given by the user"


def test_vm_gone_from_source_is_not_rerun_and_is_down(env):
    db, world, orch, uuid = env
    world.agent("h1").script = [RUNNING]
    m = orch.migrate("vm1")
    time.sleep(0.05)
    world.where.pop(uuid)                         # the VM died with its QEMU
    world.agent("h1").script = [{"state": "failed", "error": "source qemu crashed"}]
    final = wait_final(db, m.id)
    assert final.state == "FAILED" and len(final.attempts) == 1
    assert vm_record(db).status.value == "DOWN"


def test_cancel_asks_the_source_agent_and_keeps_the_vm_there(env):
    db, world, orch, uuid = env
    world.agent("h1").script = [RUNNING]
    m = orch.migrate("vm1", to="h2")
    deadline = time.monotonic() + 5
    while not any(c[0] == "VM.getMigrationStatus" for c in world.agent("h1").calls):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert orch.cancel(m.id, user="bob").state == "CANCELLING"
    final = wait_final(db, m.id)
    assert final.state == "CANCELLED"
    assert ("VM.migrateCancel", {"vmID": uuid}) in world.agent("h1").calls
    assert vm_record(db).host == "h1"
    last = events(db, m.id)[-1]
    assert last.code == VM_CANCEL_MIGRATION.code and "User: bob" in last.message
    with pytest.raises(Conflict, match="already ended"):
        orch.cancel(m.id)


def test_schedule_abort_ends_aborted_without_rerun(env):
    db, world, orch, uuid = env
    world.agent("h1").script = [RUNNING, {"state": "aborted", "error": "operation aborted: migration job"}]
    final = wait_final(db, orch.migrate("vm1").id)
    assert final.state == "ABORTED" and len(final.attempts) == 1
    assert events(db, final.id)[-1].code == VM_MIGRATION_ABORT.code
    assert vm_record(db).host == "h1"


def test_agent_refusing_vm_migrate_counts_as_a_failed_attempt(env):
    db, world, orch, uuid = env
    world.agent("h1").migrate_error = agent_error("migrationInProgress", "VM is already migrating")
    final = wait_final(db, orch.migrate("vm1", to="h3").id)
    assert final.state == "FAILED" and "already migrating" in final.error


def test_requests_are_checked_before_anything_is_sent(env):
    db, world, orch, uuid = env
    with pytest.raises(InvalidInput) as e:
        orch.migrate("vm1", to="h1")
    assert e.value.field == "to"
    with pytest.raises(InvalidInput) as e:
        orch.migrate("vm1", policy="no such policy")
    assert e.value.field == "policy"
    world.agent("h1").script = [RUNNING]
    m = orch.migrate("vm1", to="h2")
    with pytest.raises(Conflict, match="already migrating"):
        orch.migrate("vm1", to="h3")
    orch.cancel(m.id)
    wait_final(db, m.id)
    assert not any(c[0] == "VM.migrate" for c in world.agent("h2").calls)


def test_two_vms_migrate_at_once(env):
    db, world, orch, uuid = env
    with db.unit_of_work() as s:
        vm2 = s.vms.add(VmSpec(name="vm2", memory_mib=512, vcpus=1, kernel="/k"), cluster="c", host="h2")
    world.where[vm2.uuid] = "h2"
    world.agent("h1").script = [RUNNING] * 5 + [succeeded()]
    world.agent("h2").script = [RUNNING] * 5 + [succeeded()]
    a = orch.migrate("vm1", to="h3")
    b = orch.migrate("vm2", to="h3")
    assert len(orch.active_runs()) == 2 or wait_final(db, a.id)
    assert wait_final(db, a.id).state == wait_final(db, b.id).state == "SUCCEEDED"


def wait_sent(agent, n=1, timeout=10.0):
    deadline = time.monotonic() + timeout
    while sum(1 for method, _ in list(agent.calls) if method == "VM.migrate") < n:
        assert time.monotonic() < deadline, "the orchestrator never sent VM.migrate"
        time.sleep(0.01)


@pytest.fixture
def quick_doubt(monkeypatch):
    import ferry.engine.orchestrator as orchestrator

    monkeypatch.setattr(orchestrator, "LOST_AGENT_TIMEOUT_S", 0.1)
    monkeypatch.setattr(orchestrator, "RECONCILE_PAUSE_S", 0.02)
    monkeypatch.setattr(orchestrator, "SETTLE_LIMIT_S", 0.5)
    monkeypatch.setattr(orchestrator, "SEND_DOUBT_S", 0.3)
    return orchestrator


def test_source_agent_lost_while_libvirt_cannot_say_is_no_rerun_then_failed(env, quick_doubt):
    """Issue 11: no rerun while the first attempt might still run; FAILED only after the limit."""
    db, world, orch, uuid = env
    world.agent("h1").script = [RUNNING]
    m = orch.migrate("vm1")                        # reruns allowed: none may start anyway
    source = world.agent("h1")
    wait_sent(source)
    source.reachable = False
    final = wait_final(db, m.id)
    assert final.state == "FAILED" and "lost contact" in final.error and "cannot be asked" in final.error
    assert len(final.attempts) == 1
    assert final.result["reconciled"]["reality"] == "unknown"
    assert not any(c[0] == "VM.migrate" for a in world.agents.values() if a is not source for c in a.calls)
    assert sum(1 for c in source.calls if c[0] == "VM.migrate") == 1
    vm = vm_record(db)
    assert (vm.host, vm.status.value) == ("h1", "UP")     # nothing says it left


def test_source_cut_off_while_the_vm_landed_is_recorded_succeeded(env, quick_doubt):
    """Issue 11: the record said FAILED "lost contact with the source agent", the VM had migrated."""
    db, world, orch, uuid = env
    world.agent("h1").script = [RUNNING]
    m = orch.migrate("vm1", to="h2")
    source = world.agent("h1")
    wait_sent(source)
    source.reachable = False
    world.where[uuid] = "h2"                     # libvirt finished the migration during the cut
    final = wait_final(db, m.id)
    assert final.state == "SUCCEEDED", final.error
    assert final.result["reconciled"]["reality"] == "on destination"
    assert vm_record(db).host == "h2"
    assert VM_MIGRATION_DONE.code in [e.code for e in events(db, m.id)]


def test_restarted_agent_saying_no_migration_while_the_vm_landed_is_succeeded(env, quick_doubt):
    """Issue 11: the restarted source agent reported "no migration"; the VM was on the destination."""
    db, world, orch, uuid = env
    world.agent("h1").script = [RUNNING, RUNNING, {"state": "idle", "message": "no migration"}]
    m = orch.migrate("vm1")
    wait_sent(world.agent("h1"))
    first = m.destination
    world.where[uuid] = first
    final = wait_final(db, m.id)
    assert final.state == "SUCCEEDED" and final.destination == first
    assert len(final.attempts) == 1 and VM_MIGRATION_TRYING_RERUN.code not in [e.code for e in events(db, m.id)]


def test_agent_saying_no_migration_while_libvirt_still_migrates_is_followed_again(env, quick_doubt):
    db, world, orch, uuid = env
    source = world.agent("h1")
    # idle (restarted agent), then the reconciliation asks: running (adopted), then the end
    source.script = [RUNNING, {"state": "idle"}, RUNNING, RUNNING, succeeded()]
    final = wait_final(db, orch.migrate("vm1", to="h2").id)
    assert final.state == "SUCCEEDED" and len(final.attempts) == 1
    assert sum(1 for c in source.calls if c[0] == "VM.migrate") == 1


def test_vm_migrate_without_an_answer_is_unknown_and_followed_when_the_agent_runs_it(env, quick_doubt):
    """Issue 11: a VM.migrate that timed out was treated as never sent, yet the agent ran it."""
    db, world, orch, uuid = env
    source = world.agent("h1")
    source.script = [RUNNING, RUNNING, succeeded()]
    real_call = source.call

    def timed_out_but_ran(method, params):
        answer = real_call(method, params)
        if method == "VM.migrate":
            raise JsonRpcError(TRANSPORT_ERROR, "h1: read operation timed out")
        return answer

    source.call = timed_out_but_ran
    final = wait_final(db, orch.migrate("vm1").id)
    assert final.state == "SUCCEEDED" and len(final.attempts) == 1
    assert sum(1 for c in source.calls if c[0] == "VM.migrate") == 1


def test_vm_migrate_without_an_answer_starts_no_rerun_while_it_may_still_start(env, quick_doubt):
    db, world, orch, uuid = env
    source = world.agent("h1")
    source.migrate_error = JsonRpcError(TRANSPORT_ERROR, "h1: read operation timed out")
    source.script = [{"state": "idle", "message": "no migration"}]
    t0 = time.monotonic()
    m = orch.migrate("vm1")
    wait_sent(source)
    time.sleep(0.15)                               # inside the doubt window: one VM.migrate only
    assert sum(1 for c in source.calls if c[0] == "VM.migrate") == 1
    final = wait_final(db, m.id)
    sends = [c for c in source.calls if c[0] == "VM.migrate"]
    assert len(sends) >= 2 and time.monotonic() - t0 >= quick_doubt.SEND_DOUBT_S  # reran once the doubt was over
    assert final.state == "FAILED"


def test_sigterm_stops_every_new_action_and_leaves_the_record_for_the_next_engine(env, quick_doubt):
    """Issue 11: on SIGTERM the engine sent reruns while shutting down."""
    db, world, orch, uuid = env
    source = world.agent("h1")
    source.script = [RUNNING]
    m = orch.migrate("vm1")
    wait_sent(source)
    orch.begin_stop()
    source.script = [{"state": "failed", "error": "qemu died"}]    # a rerun would follow, were it not stopping
    time.sleep(0.3)
    assert sum(1 for a in world.agents.values() for c in a.calls if c[0] == "VM.migrate") == 1
    with db.unit_of_work() as s:
        assert s.migrations.get(m.id).state == "RUNNING"            # the next engine follows it
    with pytest.raises(Conflict, match="shutting down"):
        orch.migrate("vm1")
    with pytest.raises(Conflict, match="shutting down"):
        orch.cancel(m.id)


def test_total_after_an_engine_restart_counts_from_the_request_by_the_agents_clock(env):
    """Issue 11: "Total: 42 ms" for a 28 s migration after an engine restart."""
    from datetime import UTC, datetime, timedelta

    db, world, orch, uuid = env
    asked = datetime.now(UTC) - timedelta(seconds=30)
    with db.unit_of_work() as store:
        plan = {"params": {"dst": "127.9.0.2"}, "explanation": []}
        running = store.migrations.create("vm1", source="h1", destination="h2", plan=plan, state="RUNNING")
    with db.engine.begin() as conn:
        from sqlalchemy import text

        conn.execute(text("UPDATE migrations SET created_at = :t WHERE id = :id"), {"t": asked, "id": running.id})
    ended = asked.timestamp() + 28.0
    world.agent("h1").script = [succeeded(startedAt=asked.timestamp() + 0.2, endedAt=ended)]
    world.migrating[uuid] = (world.agent("h1"), "127.9.0.2")
    orch.start()
    final = wait_final(db, running.id)
    assert final.state == "SUCCEEDED"
    assert abs(final.result["wall_s"] - 28.0) < 0.5
    done = next(e for e in events(db, running.id) if e.code == VM_MIGRATION_DONE.code)
    assert "Total: 28" in done.message, done.message


def test_engine_restart_follows_running_migrations_and_fails_unsent_ones(env):
    db, world, orch, uuid = env
    with db.unit_of_work() as store:
        plan = {"params": {"dst": "127.9.0.2"}, "explanation": []}
        running = store.migrations.create("vm1", source="h1", destination="h2", plan=plan, state="RUNNING")
        store.vms.add(VmSpec(name="vm3", memory_mib=512, vcpus=1, kernel="/k"), cluster="c", host="h3")
        pending = store.migrations.create("vm3", source="h3", destination="h2", plan=plan, state="PENDING")
    world.agent("h1").script = [RUNNING, succeeded()]
    orch.start()
    assert wait_final(db, running.id).state == "SUCCEEDED"
    final = wait_final(db, pending.id)
    assert final.state == "FAILED" and "before the migration was sent" in final.error


def test_source_agent_unreachable_at_send_is_in_doubt_and_keeps_the_vm_where_it_was(env, quick_doubt):
    db, world, orch, uuid = env
    world.agent("h1").reachable = False
    final = wait_final(db, orch.migrate("vm1").id)
    assert final.state == "FAILED" and "connection refused" in final.error
    assert len(final.attempts) == 1          # no rerun: nothing can be asked of the source
    vm = vm_record(db)
    assert (vm.host, vm.status.value) == ("h1", "UP")
