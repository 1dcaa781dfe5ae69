"""Ownership (ferry.engine.ownership) over a real database file: leases created, renewed, lost
to another engine and taken over; the sole owner of SQLite writes nothing. The SQL runs on
SQLite here (no row locks); tests/integration/engine/test_leases_postgres.py runs it on PostgreSQL."""
from __future__ import annotations

import time

import pytest

from ferry.engine.db import Database
from ferry.engine.lease_rules import DRAIN, MIGRATION, ClaimOutcome
from ferry.engine.ownership import Ownership, SoleOwner, default_engine_id, ownership_for


@pytest.fixture
def db(tmp_path):
    d = Database(f"sqlite:///{tmp_path / 'engine.db'}")
    d.upgrade()
    yield d
    d.dispose()


def test_sqlite_gets_the_sole_owner_which_owns_everything_and_writes_nothing(db):
    own = ownership_for(db)
    assert isinstance(own, SoleOwner) and not own.shared
    assert own.holds(MIGRATION, "x") and own.confirm(MIGRATION, "x") and own.claim(DRAIN, "d").granted
    assert own.claimable(MIGRATION, ["x"]) == []
    with db.unit_of_work() as store:
        own.take_new(store, MIGRATION, "x")
        assert store.leases.get(MIGRATION, "x") is None


def test_a_claimed_lease_is_held_renewed_and_released(db):
    a = Ownership(db, "a", ttl_s=10, heartbeat_s=2)
    assert a.claim(MIGRATION, "m1").outcome is ClaimOutcome.NEW
    assert a.holds(MIGRATION, "m1") and a.confirm(MIGRATION, "m1")
    assert a.renew() == set()
    a.release(MIGRATION, "m1")
    assert not a.holds(MIGRATION, "m1")
    with db.unit_of_work() as store:
        assert store.leases.get(MIGRATION, "m1") is None


def test_another_engine_is_refused_until_the_lease_expires_then_the_old_owner_loses_it(db):
    a = Ownership(db, "a", ttl_s=5, heartbeat_s=0.5)
    b = Ownership(db, "b", ttl_s=5, heartbeat_s=0.5)
    a.claim(DRAIN, "d1")
    refused = b.claim(DRAIN, "d1")
    assert not refused.granted and refused.previous_owner == "a"
    assert b.claimable(DRAIN, ["d1", "d2"]) == ["d2"]       # d2 has no lease at all
    time.sleep(5.1)                                          # a never renewed (as if killed)
    assert not a.holds(DRAIN, "d1")                          # a stops acting before the expiry
    assert b.claimable(DRAIN, ["d1"]) == ["d1"]
    taken = b.claim(DRAIN, "d1")
    assert taken.outcome is ClaimOutcome.TAKEN_OVER and taken.lease.epoch == 2
    assert a.renew() == {(DRAIN, "d1")}                      # a learns it lost it
    assert not a.confirm(DRAIN, "d1") and b.confirm(DRAIN, "d1")


def test_the_heartbeat_keeps_leases_alive_past_their_ttl_and_calls_the_takeover_scan(db):
    a = Ownership(db, "a", ttl_s=5, heartbeat_s=0.5)
    scans = []
    a.on_takeover(lambda: scans.append(1))
    a.claim(MIGRATION, "m1")
    a.start()
    try:
        time.sleep(6)
        assert a.holds(MIGRATION, "m1") and scans
        assert not Ownership(db, "b", ttl_s=5, heartbeat_s=0.5).claim(MIGRATION, "m1").granted
    finally:
        a.stop()
    with db.unit_of_work() as store:                          # stopped cleanly: released at once
        assert store.leases.get(MIGRATION, "m1") is None


def test_a_new_work_lease_is_taken_in_the_creating_transaction(db):
    a = Ownership(db, "a")
    with db.unit_of_work() as store:
        a.take_new(store, MIGRATION, "m9")
    with db.unit_of_work() as store:
        assert store.leases.get(MIGRATION, "m9").owner == "a"
    assert a.holds(MIGRATION, "m9")


def test_engine_ids_come_from_the_environment_or_are_unique(monkeypatch):
    monkeypatch.delenv("FERRY_ENGINE_ID", raising=False)
    assert default_engine_id() != default_engine_id()
    monkeypatch.setenv("FERRY_ENGINE_ID", "engine-7")
    assert default_engine_id() == "engine-7"
    monkeypatch.setenv("FERRY_ENGINE_ID", "bad id")
    with pytest.raises(ValueError, match="engine id"):
        default_engine_id()


def test_a_heartbeat_too_slow_for_the_ttl_is_refused(db):
    with pytest.raises(ValueError, match="too slow"):
        Ownership(db, "a", ttl_s=10, heartbeat_s=5)
