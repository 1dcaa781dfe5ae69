"""Leases on the real PostgreSQL the tests start (issue 18 item 3): several engines claiming the
same queue of work at once never own one item together.

Each "engine" is an `Ownership` with its own connection pool, in its own thread, claiming every
item of one queue over and over; engines die (stop renewing) and others take their items over.
Every granted claim is logged with its epoch and expiry (the database's clock), and the log is
then checked: one owner per epoch, epochs that only grow, and an epoch that begins only once the
previous one's last expiry has passed -- i.e. never two owners at any instant.
"""
from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from datetime import timedelta

import pytest

from ferry.engine.db import Database
from ferry.engine.lease_rules import MIGRATION, ClaimOutcome
from ferry.engine.ownership import Ownership

pytestmark = [pytest.mark.postgres]

TTL_S = 5.0
ITEMS = [f"m{i}" for i in range(12)]


@pytest.fixture
def pg(postgres_url):
    db = Database(postgres_url)
    db.upgrade()
    yield postgres_url
    db.dispose()


def _engine(url: str, name: str, log: list, lock: threading.Lock, until: float, dies_at: float | None) -> None:
    db = Database(url)
    own = Ownership(db, name, ttl_s=TTL_S, heartbeat_s=0.5)
    rng = random.Random(name)
    try:
        while time.monotonic() < until:
            if dies_at is not None and time.monotonic() > dies_at:
                return                       # as kill -9: no release, its leases just run out
            for key in rng.sample(ITEMS, len(ITEMS)):
                c = own.claim(MIGRATION, key)
                if c.granted:
                    with lock:
                        log.append((key, c.lease.epoch, name, c.outcome, c.lease.expires_at))
            time.sleep(rng.uniform(0.0, 0.05))
    finally:
        db.dispose()


def check_never_two_owners(log: list) -> dict[str, int]:
    epochs: dict[str, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    for key, epoch, owner, outcome, expires in log:
        epochs[key][epoch].append((owner, outcome, expires))
    changes = {}
    for key, by_epoch in epochs.items():
        numbers = sorted(by_epoch)
        assert numbers == list(range(1, len(numbers) + 1)), f"{key}: epochs {numbers} skip"
        for e in numbers:
            owners = {o for o, _, _ in by_epoch[e]}
            assert len(owners) == 1, f"{key} epoch {e} owned by {owners} at once"
        for e in numbers[1:]:
            previous_end = max(x for _, _, x in by_epoch[e - 1])
            first = [x for _, out, x in by_epoch[e] if out is ClaimOutcome.TAKEN_OVER]
            assert first, f"{key} epoch {e} began without a takeover"
            began = min(first) - timedelta(seconds=TTL_S)
            assert began >= previous_end, f"{key}: epoch {e} began {began} before epoch {e - 1} ended {previous_end}"
        changes[key] = len(numbers) - 1
    return changes


@pytest.mark.parametrize("round_", range(6))
def test_n_engines_claiming_one_queue_never_double_own(pg, round_):
    log: list = []
    lock = threading.Lock()
    start = time.monotonic()
    n = 3 + round_ % 3                           # 3, 4 or 5 engines
    deaths = [start + 2 + i * 3 if i < n - 1 else None for i in range(n)]   # all but one die in turn
    until = deaths[n - 2] + TTL_S + 2            # the survivor has time to take the last one's work
    threads = [threading.Thread(target=_engine, args=(pg, f"e{round_}-{i}", log, lock, until, deaths[i]))
               for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert log, "no claim was ever granted"
    changes = check_never_two_owners(log)
    assert set(changes) == set(ITEMS)
    assert sum(changes.values()) >= 1, "no engine ever took work over from a dead one"
    db = Database(pg)
    try:
        with db.unit_of_work() as store:
            owners = {key: store.leases.get(MIGRATION, key).owner for key in ITEMS}
    finally:
        db.dispose()
    assert set(owners.values()) == {f"e{round_}-{n - 1}"}, owners   # the survivor holds it all in the end


def test_two_engines_racing_for_new_rows_create_each_once(pg):
    """No row yet: both insert; ON CONFLICT DO NOTHING lets exactly one through per key."""
    dbs = [Database(pg) for _ in range(4)]
    owns = [Ownership(d, f"r{i}") for i, d in enumerate(dbs)]
    wins: dict[str, list[str]] = defaultdict(list)
    barrier = threading.Barrier(len(owns))

    def race(own):
        barrier.wait()
        for key in ITEMS:
            if own.claim(MIGRATION, key).outcome is ClaimOutcome.NEW:
                wins[key].append(own.engine_id)

    threads = [threading.Thread(target=race, args=(o,)) for o in owns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    for d in dbs:
        d.dispose()
    assert {k: len(v) for k, v in wins.items()} == {k: 1 for k in ITEMS}, wins
