"""Two engines in one process on a real PostgreSQL database (issue 18 item 3), with the recording
fake agents of test_orchestrator: a cancel sent to the engine that does not follow the migration
is carried out by the one that does (or, that one dead, by the engine that takes it over), and
answered with the real state; a write by an engine whose lease was taken over is fenced; the
host monitoring is split between the live engines and a dead engine's hosts go to the others.
The subprocess tests (tests/integration/engine/test_engines_postgres.py, tests/e2e) kill and
pause real engine processes."""
from __future__ import annotations

import threading
import time

import pytest

from ferry.engine.db import Database
from ferry.engine.lease_rules import MIGRATION, ClaimOutcome
from ferry.engine.monitor import HostMonitor, PlacementGuard
from ferry.engine.orchestrator import Orchestrator
from ferry.engine.ownership import Fenced, Ownership
from tests.unit.engine.test_orchestrator import RUNNING, seed_world, wait_final, wait_sent

pytestmark = [pytest.mark.postgres]

TTL_S, BEAT_S = 5.0, 0.5


@pytest.fixture
def two(postgres_url):
    db = Database(postgres_url)
    db.upgrade()
    world, _uuid = seed_world(db)
    engines = []
    for name in ("a", "b"):
        own = Ownership(db, name, ttl_s=TTL_S, heartbeat_s=BEAT_S)
        engines.append((Orchestrator(db, guard=PlacementGuard(), agent=world.factory, poll_interval=0.01,
                                     ownership=own), own))
    yield db, world, engines
    for orch, own in engines:
        orch.stop()
        own.stop(release=False)
    db.dispose()


def cancels(world) -> int:
    return sum(1 for a in world.agents.values() for c in a.calls if c[0] == "VM.migrateCancel")


def sends(world) -> int:
    return sum(1 for a in world.agents.values() for c in a.calls if c[0] == "VM.migrate")


def start_both_and_migrate(world, engines):
    """Both engines running; engine a migrates vm1 to h2 and its VM.migrate has reached h1's agent."""
    for orch, own in engines:
        own.start()
        orch.start()
    world.agent("h1").script = [RUNNING]
    m = engines[0][0].migrate("vm1", to="h2")
    wait_sent(world.agent("h1"))
    return m


def owner(db, migration_id):
    with db.unit_of_work() as s:
        lease = s.leases.get(MIGRATION, migration_id)
    return None if lease is None else lease.owner


def test_a_cancel_sent_to_the_other_engine_is_carried_out_by_the_owner_and_answered_with_its_state(two):
    db, world, ((a, own_a), (b, own_b)) = two
    m = start_both_and_migrate(world, ((a, own_a), (b, own_b)))
    t0 = time.monotonic()
    answer = b.cancel(m.id, user="alice")           # b does not follow it: before issue 18's fix, 409
    took = time.monotonic() - t0
    assert answer.state.value in ("CANCELLING", "CANCELLED"), answer   # the fake agent ends it at once
    assert took < 2.0, f"the owner acted after {took:.2f} s"
    assert cancels(world) == 1 and b.active_runs() == []        # sent by a, the owner; b followed nothing
    final = wait_final(db, m.id)
    assert final.state.value == "CANCELLED"
    with db.unit_of_work() as s:
        assert s.migrations.cancel_requests([m.id]) == {}      # carried out: the request is gone
    assert sends(world) == 1


def test_a_cancel_for_a_dead_owner_is_carried_out_by_the_engine_that_takes_the_migration_over(two):
    db, world, ((a, _own_a), (b, own_b)) = two
    own_b.start()
    b.start()
    world.agent("h1").script = [RUNNING]
    m = a.migrate("vm1", to="h2")       # a never renews nor reads requests: as if hung, then gone
    wait_sent(world.agent("h1"))
    t0 = time.monotonic()
    answer = b.cancel(m.id, user="alice")
    took = time.monotonic() - t0
    assert answer.state.value in ("CANCELLING", "CANCELLED"), answer
    assert took <= TTL_S + 3 * BEAT_S + 1, f"{took:.1f} s"
    assert owner(db, m.id) in ("b", None) and a.active_runs() == []
    assert wait_final(db, m.id).state.value == "CANCELLED"
    assert cancels(world) == 1 and sends(world) == 1, "the taker-over sent VM.migrate again"


def test_a_cancel_of_an_ended_migration_is_still_a_conflict(two):
    from ferry.common.errors import Conflict

    db, world, ((a, own_a), (b, _)) = two
    world.agent("h1").script = [{"state": "succeeded", "totalTime": 10, "downtime": 1, "bytesTransferred": 1}]
    m = a.migrate("vm1", to="h2")
    wait_final(db, m.id)
    with pytest.raises(Conflict, match="already ended"):
        b.cancel(m.id)


def test_a_write_of_an_engine_whose_lease_was_taken_over_is_fenced_and_changes_nothing(two):
    db, world, ((a, own_a), (b, own_b)) = two
    world.agent("h1").script = [RUNNING]
    m = a.migrate("vm1", to="h2")              # a's heartbeat never runs: its lease runs out
    wait_sent(world.agent("h1"))
    deadline = time.monotonic() + TTL_S + 3
    while not own_b.claimable(MIGRATION, [m.id]):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    b.take_over()
    assert owner(db, m.id) == "b" and m.id in b.active_runs()
    with db.unit_of_work() as s:
        assert s.leases.get(MIGRATION, m.id).epoch >= 1
        before = s.migrations.get(m.id)
    with pytest.raises(Fenced, match="engine b owns it now|the lease is gone|does not hold it"):
        with a._writing(m.id) as store:        # what a's thread would write after waking up
            store.migrations.update(m.id, progress=99, state="FAILED", error="stale")
    with db.unit_of_work() as s:
        after = s.migrations.get(m.id)
    assert (after.state, after.progress, after.error) == (before.state, before.progress, before.error)
    assert sends(world) == 1


def test_a_takeover_cannot_slip_in_while_the_owner_s_fenced_write_is_open(two):
    """The fence holds the lease row FOR SHARE until the commit; a claim (SKIP LOCKED) is refused
    meanwhile, even once the lease has expired, and succeeds after the commit."""
    db, _world, ((_a, own_a), (_b, own_b)) = two
    own_a.claim(MIGRATION, "m-x")
    time.sleep(TTL_S + 0.2)                      # expired: b could take it
    inside, go_on = threading.Event(), threading.Event()
    refused = []

    def other_engine():
        inside.wait(5)
        refused.append(own_b.claim(MIGRATION, "m-x"))
        go_on.set()

    t = threading.Thread(target=other_engine)
    t.start()
    with db.unit_of_work() as store:
        own_a._keep(MIGRATION, "m-x", 1, time.monotonic())   # a believes it holds it (local clock)
        with pytest.raises(Fenced, match="ran out"):
            own_a.fence(store, MIGRATION, "m-x")
    own_a._keep(MIGRATION, "m-x", 1, time.monotonic())
    with db.unit_of_work() as store:                          # renewed in the same transaction: allowed
        store.leases.claim(MIGRATION, "m-x", "a", TTL_S)
        own_a.fence(store, MIGRATION, "m-x")
        inside.set()
        time.sleep(0.5)                                       # b claims while the row is share-locked
    t.join(5)
    go_on.wait(5)
    assert refused and refused[0].outcome is ClaimOutcome.REFUSED and "claiming it right now" in refused[0].why


def test_the_hosts_are_split_between_the_live_engines_and_a_dead_engine_s_go_to_the_other(two):
    db, _world, ((_a, own_a), (_b, own_b)) = two
    hosts = [f"host-{i}" for i in range(200)]
    own_a.start()
    own_b.start()
    deadline = time.monotonic() + 5
    while own_a.live_engines != ("a", "b"):
        assert time.monotonic() < deadline, own_a.live_engines
        time.sleep(0.05)
    share_a, share_b = set(own_a.hosts_to_refresh(hosts)), set(own_b.hosts_to_refresh(hosts))
    assert share_a | share_b == set(hosts) and not share_a & share_b
    assert 60 <= len(share_a) <= 140
    own_b.stop(release=False)                     # as kill -9: its ENGINE lease just runs out
    t0 = time.monotonic()
    while set(own_a.hosts_to_refresh(hosts)) != set(hosts):
        assert time.monotonic() - t0 < TTL_S + 2 * BEAT_S + 0.5, own_a.live_engines
        time.sleep(0.05)
    took = time.monotonic() - t0
    assert took <= TTL_S + 2 * BEAT_S + 0.5


class _Agents:
    """Host.* answers for the monitor, counting who was asked."""

    def __init__(self):
        self.asked: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, url: str):
        agents = self

        class One:
            def call(self, method, params):
                with agents.lock:
                    agents.asked.append(url)
                return {"vms": []} if method == "Host.getVMList" else {"memFree": 1000}
        return One()


def test_a_monitor_given_a_share_refreshes_only_those_hosts(two):
    db, _world, _ = two
    agents = _Agents()
    mon = HostMonitor(db, agent=agents, interval=60, workers=2, share=lambda names: [n for n in names if n != "h2"])
    mon.start()
    try:
        time.sleep(2.5)
    finally:
        mon.stop()
    asked = {u for u in agents.asked}
    assert asked == {"https://127.9.0.1:54321/", "https://127.9.0.3:54321/"}, asked


def test_a_drain_s_abort_of_another_engine_s_migration_does_not_wait_and_is_carried_out(two):
    """The drain runner's abort (maintenance cancel with abort_running) hands the cancel over
    without waiting for it (wait=False: its tick goes on); the owner carries it out."""
    db, world, ((a, own_a), (b, own_b)) = two
    m = start_both_and_migrate(world, ((a, own_a), (b, own_b)))
    t0 = time.monotonic()
    answer = b.cancel(m.id, user="drain", wait=False)
    assert time.monotonic() - t0 < 0.5 and answer.state.value == "RUNNING"
    assert wait_final(db, m.id).state.value == "CANCELLED"
    assert cancels(world) == 1
