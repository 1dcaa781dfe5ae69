"""The orchestrator with leases (issue 18 item 3), two engines on one store and the recording
fake agents of test_orchestrator: an engine acts on a migration only while it holds the lease,
stops when it loses it, and the engine that takes it over follows it without sending VM.migrate
again; a migration never sent is failed by the new owner (its drain queues the VM again)."""
from __future__ import annotations

import time

import pytest

from ferry.engine.lease_rules import MIGRATION
from ferry.engine.monitor import PlacementGuard
from ferry.engine.orchestrator import Orchestrator
from ferry.engine.ownership import Ownership
from tests.unit.engine.test_orchestrator import RUNNING, env, succeeded, wait_final, wait_sent  # noqa: F401

TTL_S, BEAT_S = 5.0, 0.5


def sends(world) -> int:
    return sum(1 for a in world.agents.values() for c in a.calls if c[0] == "VM.migrate")


def second_engine(db, world, name="b"):
    own = Ownership(db, name, ttl_s=TTL_S, heartbeat_s=BEAT_S)
    return Orchestrator(db, guard=PlacementGuard(), agent=world.factory, poll_interval=0.01, ownership=own), own


@pytest.fixture
def two(env):  # noqa: F811 - the fixture imported above
    db, world, _sole, uuid = env
    a, own_a = second_engine(db, world, "a")
    b, own_b = second_engine(db, world, "b")
    yield db, world, (a, own_a), (b, own_b), uuid
    a.stop()
    b.stop()


def owner(db, migration_id):
    with db.unit_of_work() as s:
        lease = s.leases.get(MIGRATION, migration_id)
    return None if lease is None else lease.owner


def test_the_accepting_engine_owns_the_migration_and_lets_it_go_when_it_ends(two):
    db, world, (a, _), _, _ = two
    world.agent("h1").script = [RUNNING, RUNNING, succeeded()]
    m = a.migrate("vm1", to="h2")
    assert owner(db, m.id) == "a"
    assert wait_final(db, m.id).state == "SUCCEEDED"
    deadline = time.monotonic() + 5
    while owner(db, m.id) is not None:
        assert time.monotonic() < deadline, "the lease of an ended migration was kept"
        time.sleep(0.02)
    assert sends(world) == 1


def test_an_engine_that_loses_the_lease_stops_and_the_new_owner_follows_without_resending(two):
    db, world, (a, _), (b, own_b), _ = two
    source = world.agent("h1")
    source.script = [RUNNING]
    m = a.migrate("vm1", to="h2")          # a never renews (its heartbeat is not running: as if hung)
    wait_sent(source)
    deadline = time.monotonic() + TTL_S + 2
    while a.active_runs():                 # a stops acting ACT_MARGIN_S before its expiry
        assert time.monotonic() < deadline, "engine a kept following a migration whose lease ran out"
        time.sleep(0.05)
    with db.unit_of_work() as s:
        assert s.migrations.get(m.id).state == "RUNNING"
    while owner(db, m.id) == "a" and not own_b.claimable(MIGRATION, [m.id]):
        assert time.monotonic() < deadline + 5
        time.sleep(0.05)
    b.take_over()
    assert m.id in b.active_runs() and owner(db, m.id) == "b"
    source.script = [RUNNING, succeeded()]
    assert wait_final(db, m.id).state == "SUCCEEDED"
    assert sends(world) == 1, "the new owner sent VM.migrate again"
    with db.unit_of_work() as s:
        assert s.vms.get("vm1").host == "h2"


def test_a_good_lease_of_another_engine_is_not_taken(two):
    db, world, (a, own_a), (b, _), _ = two
    world.agent("h1").script = [RUNNING]
    m = a.migrate("vm1", to="h2")
    own_a.start()                          # a renews
    wait_sent(world.agent("h1"))
    b.take_over()
    assert b.active_runs() == [] and owner(db, m.id) == "a"
    time.sleep(TTL_S + 1)
    b.take_over()
    assert b.active_runs() == [] and owner(db, m.id) == "a" and m.id in a.active_runs()
    own_a.stop(release=False)


def test_no_vm_migrate_without_confirming_the_lease_and_the_new_owner_fails_the_unsent(two, monkeypatch):
    db, world, (a, own_a), (b, own_b), _ = two
    monkeypatch.setattr(own_a, "confirm", lambda kind, key: False)   # as if taken over in between
    m = a.migrate("vm1", to="h2")
    deadline = time.monotonic() + 5
    while a.active_runs():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert sends(world) == 0
    with db.unit_of_work() as s:
        assert s.migrations.get(m.id).state == "PENDING"
    assert owner(db, m.id) is None           # let go at once (its thread ended)
    b.take_over()
    final = wait_final(db, m.id)
    assert final.state == "FAILED" and "before the migration was sent" in final.error
    assert owner(db, m.id) is None and sends(world) == 0
