"""The lease rules (ferry.engine.lease_rules): who may claim, when a lease has expired, whether
an owner may still act, what a takeover does first -- every case of each rule."""
from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from ferry.engine import lease_rules as r
from ferry.engine.lease_rules import ClaimOutcome, Lease, TakeoverStep

T0 = datetime(2026, 12, 2, 12, 0, 0, tzinfo=UTC)


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def lease(owner: str = "a", expires: float = 10.0, epoch: int = 1, kind: str = r.MIGRATION, key: str = "m1") -> Lease:
    return Lease(kind, key, owner, s(expires), epoch)


def claim(current, claimant="b", now=0.0, ttl=10.0, kind=r.MIGRATION, key="m1"):
    return r.claim(current, kind=kind, key=key, claimant=claimant, now=s(now), ttl_s=ttl)


# ---- claim -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", r.KINDS)
def test_a_free_lease_goes_to_whoever_claims_it_at_epoch_1(kind):
    c = claim(None, claimant="b", now=5, kind=kind, key="k")
    assert c.outcome is ClaimOutcome.NEW and c.granted and c.previous_owner is None
    assert c.lease == Lease(kind, "k", "b", s(15), 1)


@pytest.mark.parametrize("expires", [-100.0, -0.001, 0.0, 0.5, 10.0, 100.0])
def test_the_owner_always_renews_its_own_lease_keeping_the_epoch(expires):
    c = claim(lease("a", expires=expires, epoch=7), claimant="a", now=0, ttl=10)
    assert c.outcome is ClaimOutcome.RENEWED and c.granted
    assert c.lease.owner == "a" and c.lease.epoch == 7
    assert c.lease.expires_at == max(s(10), s(expires))   # never shortened


@pytest.mark.parametrize("left", [0.001, 1.0, 9.999, 10.0, 1000.0])
def test_another_engines_good_lease_is_refused_and_says_who_and_how_long(left):
    c = claim(lease("a", expires=left), claimant="b", now=0)
    assert c.outcome is ClaimOutcome.REFUSED and not c.granted and c.lease is None
    assert c.previous_owner == "a" and "engine a holds it" in c.why


@pytest.mark.parametrize("late", [0.0, 0.001, 5.0, 3600.0])
def test_an_expired_lease_of_another_engine_is_taken_over_with_the_next_epoch(late):
    c = claim(lease("a", expires=-late, epoch=3), claimant="b", now=0, ttl=10)
    assert c.outcome is ClaimOutcome.TAKEN_OVER and c.granted
    assert c.lease == Lease(r.MIGRATION, "m1", "b", s(10), 4)
    assert c.previous_owner == "a" and "let it expire" in c.why


def test_expiry_is_inclusive_of_the_expiry_instant():
    assert r.expired(lease(expires=0), s(0)) and r.expired(lease(expires=0), s(0.001))
    assert not r.expired(lease(expires=0), s(-0.001))


def test_the_whole_claim_table():
    """Every (holder, expiry, claimant) combination, by the rule in one line each."""
    for holder, expires, claimant in itertools.product([None, "a", "b"], [-5.0, 0.0, 5.0], ["a", "b"]):
        current = None if holder is None else lease(holder, expires=expires)
        c = claim(current, claimant=claimant, now=0)
        if holder is None:
            want = ClaimOutcome.NEW
        elif holder == claimant:
            want = ClaimOutcome.RENEWED
        elif expires <= 0:
            want = ClaimOutcome.TAKEN_OVER
        else:
            want = ClaimOutcome.REFUSED
        assert c.outcome is want, (holder, expires, claimant)
        assert c.granted == (want is not ClaimOutcome.REFUSED)
        if c.granted:
            assert c.lease.owner == claimant and c.lease.expires_at >= s(10)


@pytest.mark.parametrize("bad", dict(kind="vm", ttl=0, ttl_neg=-1).items())
def test_bad_claims_name_what_is_wrong(bad):
    name, value = bad
    with pytest.raises(ValueError, match="kind" if name == "kind" else "ttl"):
        claim(None, kind=value) if name == "kind" else claim(None, ttl=value)


@pytest.mark.parametrize("engine_id", ["", "a b", "x\ty", "a\n", "z" * 129, None])
def test_a_bad_engine_id_is_refused(engine_id):
    with pytest.raises(ValueError, match="engine id"):
        r.check_engine_id(engine_id)


def test_good_engine_ids_pass():
    for ok in ["a", "engine-1", "host.example.org-4242-abcdef", "z" * 128]:
        assert r.check_engine_id(ok) == ok


def test_a_lease_of_other_work_is_not_taken_for_this_one():
    with pytest.raises(ValueError, match="given for"):
        claim(lease(key="m2"), key="m1")
    with pytest.raises(ValueError, match="given for"):
        claim(lease(kind=r.DRAIN), kind=r.MIGRATION)


# ---- acting ------------------------------------------------------------------------------------
@pytest.mark.parametrize("owner,epoch,left,ok", [
    ("me", 2, 10.0, True), ("me", 2, 3.0, True), ("me", 2, 2.999, False), ("me", 2, 0.0, False),
    ("me", 2, -1.0, False), ("me", 1, 10.0, False), ("me", 3, 10.0, False), ("other", 2, 10.0, False),
])
def test_an_owner_acts_only_on_its_own_unchanged_lease_with_time_left(owner, epoch, left, ok):
    assert r.may_act(lease(owner, expires=left, epoch=epoch), me="me", epoch=2, now=s(0)) is ok


def test_no_lease_no_action():
    assert not r.may_act(None, me="me", epoch=1, now=s(0))


@pytest.mark.parametrize("deadline,now,ok", [(None, 0.0, False), (10.0, 0.0, True), (10.0, 7.0, True),
                                             (10.0, 7.001, False), (10.0, 10.0, False), (10.0, 20.0, False)])
def test_an_owner_that_cannot_renew_stops_acting_before_its_expiry(deadline, now, ok):
    assert r.locally_held(deadline, now) is ok


# ---- takeover ----------------------------------------------------------------------------------
@pytest.mark.parametrize("state,step", [
    ("PENDING", TakeoverStep.FAIL_UNSENT), ("RUNNING", TakeoverStep.FOLLOW), ("CANCELLING", TakeoverStep.FOLLOW),
    ("SUCCEEDED", TakeoverStep.RELEASE), ("FAILED", TakeoverStep.RELEASE), ("CANCELLED", TakeoverStep.RELEASE),
    ("ABORTED", TakeoverStep.RELEASE),
])
def test_what_a_takeover_does_first(state, step):
    assert r.takeover_step(state) is step


def test_every_migration_state_has_a_takeover_step():
    from ferry.engine.db.records import MigrationState

    for state in MigrationState:
        assert isinstance(r.takeover_step(state.value), TakeoverStep)
    with pytest.raises(ValueError, match="unknown migration state"):
        r.takeover_step("WAITING")


@pytest.mark.parametrize("started,now,left", [(None, 0.0, 30.0), (0.0, 0.0, 30.0), (0.0, 10.0, 20.0),
                                              (0.0, 30.0, 0.0), (0.0, 300.0, 0.0), (5.0, 0.0, 30.0)])
def test_a_vm_migrate_the_old_owner_sent_stays_in_doubt_for_the_window(started, now, left):
    when = None if started is None else s(started)
    assert r.send_doubt_left(when, s(now), 30.0) == pytest.approx(left)   # a start "in the future" (skew): 30


def test_the_default_configuration_takes_over_within_15_s():
    assert r.worst_takeover_s() == r.LEASE_TTL_S + r.HEARTBEAT_S <= 15


@pytest.mark.parametrize("ttl,beat", [(10.0, 3.5), (10.0, 10.0), (4.0, 1.0), (0, 1), (10, 0)])
def test_a_heartbeat_too_slow_for_its_ttl_is_refused(ttl, beat):
    with pytest.raises(ValueError):
        r.worst_takeover_s(ttl, beat)


# ---- fencing -------------------------------------------------------------------------------------
def test_a_write_is_allowed_only_to_the_owner_at_its_epoch_before_the_expiry():
    assert r.fenced(lease("a", expires=10, epoch=3), me="a", epoch=3, now=s(9.9)) is None


@pytest.mark.parametrize("current,now,why", [
    (None, 0.0, "gone"),
    (lease("b", expires=20, epoch=4), 11.0, "engine b owns it now (epoch 4, ours was 3)"),
    (lease("a", expires=20, epoch=5), 11.0, "changed hands since we claimed it (epoch 5, ours was 3)"),
    (lease("a", expires=10, epoch=3), 10.0, "ran out 0.0 s ago"),
    (lease("a", expires=10, epoch=3), 14.5, "ran out 4.5 s ago"),
])
def test_a_stale_write_is_fenced_and_says_why(current, now, why):
    """Another owner, a later epoch (it went away and came back to us: the work may have moved
    meanwhile) or an expired lease each refuse the write."""
    got = r.fenced(current, me="a", epoch=3, now=s(now))
    assert got is not None and why in got


def test_a_paused_owner_taken_over_is_fenced_while_the_new_owner_may_write():
    """The SIGSTOP case from the rules alone: a claims (epoch 1), pauses past its ttl, b takes over."""
    first = claim(None, claimant="a", now=0).lease
    taken = claim(first, claimant="b", now=12)
    assert taken.outcome is ClaimOutcome.TAKEN_OVER
    assert r.fenced(taken.lease, me="a", epoch=first.epoch, now=s(12.5)) is not None
    assert r.fenced(taken.lease, me="b", epoch=taken.lease.epoch, now=s(12.5)) is None


# ---- sharing the hosts ---------------------------------------------------------------------------
HOSTS = [f"host-{i:04d}" for i in range(2000)]


def test_live_engines_are_those_with_an_unexpired_engine_lease_sorted():
    rows = [lease("c", 10, kind=r.ENGINE, key="c"), lease("a", 10, kind=r.ENGINE, key="a"),
            lease("dead", 4, kind=r.ENGINE, key="dead"), lease("m-owner", 10, kind=r.MIGRATION, key="m")]
    assert r.live_engines(rows, s(5)) == ("a", "c")
    assert r.live_engines(rows, s(10)) == ()


def test_every_host_is_refreshed_by_exactly_one_live_engine_the_same_one_everywhere():
    engines = ("e1", "e2", "e3")
    shares = {e: set(r.hosts_to_refresh(e, HOSTS, engines)) for e in engines}
    assert set().union(*shares.values()) == set(HOSTS)
    assert sum(len(x) for x in shares.values()) == len(HOSTS)          # disjoint
    assert shares["e1"] == set(r.hosts_to_refresh("e1", HOSTS, ("e3", "e1", "e2")))  # order does not matter
    assert all(550 <= len(x) <= 780 for x in shares.values()), {e: len(x) for e, x in shares.items()}


def test_a_dead_engine_s_hosts_go_to_the_survivors_and_only_those_move():
    before = {h: r.refreshed_by(h, ("e1", "e2", "e3")) for h in HOSTS}
    after = {h: r.refreshed_by(h, ("e1", "e3")) for h in HOSTS}
    moved = {h for h in HOSTS if before[h] != after[h]}
    assert moved == {h for h in HOSTS if before[h] == "e2"}
    assert set(after.values()) == {"e1", "e3"}


def test_a_joining_engine_takes_about_its_share_from_each():
    before = {h: r.refreshed_by(h, ("e1", "e2")) for h in HOSTS}
    after = {h: r.refreshed_by(h, ("e1", "e2", "e3")) for h in HOSTS}
    moved = [h for h in HOSTS if before[h] != after[h]]
    assert all(after[h] == "e3" for h in moved)
    assert 550 <= len(moved) <= 780


def test_an_engine_not_seen_live_refreshes_every_host_and_none_live_means_nobody():
    assert r.hosts_to_refresh("e9", HOSTS[:5], ("e1", "e2")) == HOSTS[:5]
    assert r.hosts_to_refresh("e1", HOSTS[:5], ("e1",)) == HOSTS[:5]
    assert r.refreshed_by("h", ()) is None


def test_the_host_weight_is_stable_across_processes():
    """Not Python's hash() (randomised per process): a fixed digest every engine computes alike."""
    assert r.host_weight("engine-a", "h1") == r.host_weight("engine-a", "h1") != r.host_weight("engine-b", "h1")
    assert r.host_weight("engine-a", "h1") == int.from_bytes(
        __import__("hashlib").blake2b(b"engine-a\0h1", digest_size=8).digest(), "big")
