"""Three real engine processes on the real PostgreSQL the tests start (issue 18 item 3), without
the lab: migrations left RUNNING are owned by the first engine that starts; kill -9 it and the
two others share its work within 15 s, each migration followed by exactly one of them; kill -9
the next and the last one holds everything. The agents of these hosts do not answer (nothing
listens at their loopback addresses), so the followers reconcile and keep the records RUNNING:
no VM.migrate can be sent, and none is (the lab e2e test covers real in-flight migrations).
"""
from __future__ import annotations

import time

import pytest

from ferry.bench.failover import EnginePair, owners, seed_orphans, wait_takeover
from ferry.engine.lease_rules import MIGRATION

pytestmark = [pytest.mark.postgres]

TAKEOVER_LIMIT_S = 15.0
N = 6


def _sent(url: str, ids: list[str]) -> int:
    """VM_MIGRATION_START events (one per VM.migrate sent) of these migrations."""
    from ferry.engine import audit
    from ferry.engine.db import Database

    db = Database(url)
    try:
        with db.unit_of_work() as store:
            return sum(1 for i in ids for e in store.events.list(migration_id=i) if e.code == audit.VM_MIGRATION_START.code)
    finally:
        db.dispose()


def _followers(engines, migration_id: str) -> list[str]:
    line = f"migration {migration_id} of VM "
    return [e.engine_id for e in engines if line in e.log.read_text(errors="replace")
            and e.proc.poll() is None]


def _until(what, cond, timeout: float):
    deadline = time.monotonic() + timeout
    while not (value := cond()):
        assert time.monotonic() < deadline, what
        time.sleep(0.2)
    return value


def test_three_engines_share_the_work_of_the_dead_each_migration_one_owner(postgres_url, tmp_path):
    pair = EnginePair(postgres_url, tmp_path, n=3)
    pair.prepare()
    ids = seed_orphans(postgres_url, N)
    work = [(MIGRATION, i) for i in ids]
    try:
        a = pair.start_one()
        _until("engine-a owns the leftovers", lambda: set(owners(postgres_url, work).values()) == {"engine-a"}, 30)
        b, c = pair.start_one(), pair.start_one()
        time.sleep(3)                       # b and c see a's good leases and leave them alone
        assert set(owners(postgres_url, work).values()) == {"engine-a"}
        took_1, after_1 = wait_takeover(postgres_url, work, "engine-a", a.kill9(), timeout=60)
        assert took_1 <= TAKEOVER_LIMIT_S and set(after_1.values()) <= {"engine-b", "engine-c"}, (took_1, after_1)
        for i in ids:                       # followed by exactly the engine owning it
            want = [after_1[(MIGRATION, i)]]
            assert _until(f"{i} followed", lambda i=i: _followers([b, c], i), 15) == want, i
        held = list(after_1.values())
        victim, last = (b, c) if held.count(b.engine_id) >= held.count(c.engine_id) else (c, b)   # the scan may take all
        took_2, after_2 = wait_takeover(postgres_url, work, victim.engine_id, victim.kill9(), timeout=60)
        assert took_2 <= TAKEOVER_LIMIT_S and set(after_2.values()) == {last.engine_id}, (took_2, after_2)
        print(f"\ntakeover after kill -9: {took_1:.1f} s (engine-a -> {sorted(set(after_1.values()))}), "
              f"{took_2:.1f} s ({victim.engine_id}, {held.count(victim.engine_id)} migrations -> {last.engine_id})")
        assert _sent(postgres_url, ids) == 0, "a follower sent VM.migrate"
    finally:
        pair.stop()


def test_a_cancel_sent_over_rest_to_the_engine_that_does_not_own_the_migration_is_carried_out(postgres_url, tmp_path):
    """Engine A follows the leftovers; POST .../cancel to engine B answers with the record A
    marked CANCELLING (before: 409 "another engine owns it"); kill -9 A and a cancel sent to B
    for another one is carried out by B once it has taken that migration over."""
    from ferry.client.engine_client import EngineClient

    pair = EnginePair(postgres_url, tmp_path, n=2)
    pair.prepare()
    ids = seed_orphans(postgres_url, 2)
    work = [(MIGRATION, i) for i in ids]
    try:
        a = pair.start_one()
        _until("engine-a owns the leftovers", lambda: set(owners(postgres_url, work).values()) == {"engine-a"}, 30)
        b = pair.start_one()
        with EngineClient(b.url, pair.token, timeout=60) as client:
            t0 = time.monotonic()
            first = client.post(f"/api/migrations/{ids[0]}/cancel", {"user": "alice"})
            live_s = time.monotonic() - t0
            assert first["state"] == "CANCELLING", first
            assert live_s < 3, f"{live_s:.1f} s"
            assert f"migration {ids[0]}: cancel asked of another engine by alice carried out" in \
                a.log.read_text(errors="replace")
            killed_at = a.kill9()
            second = client.post(f"/api/migrations/{ids[1]}/cancel", {"user": "bob"})
            dead_s = time.monotonic() - killed_at
            assert second["state"] == "CANCELLING", second
            assert dead_s <= TAKEOVER_LIMIT_S + 1, f"{dead_s:.1f} s"
            assert owners(postgres_url, [(MIGRATION, ids[1])])[(MIGRATION, ids[1])] == "engine-b"
        print(f"\ncancel via the non-owner: {live_s:.2f} s (owner alive), {dead_s:.1f} s after kill -9 of the owner")
        assert _sent(postgres_url, ids) == 0
    finally:
        pair.stop()
