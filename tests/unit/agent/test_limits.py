"""Outgoing/incoming migration slots."""
import threading
import time

import pytest

from ferry.agent.limits import MigrationSlots, default_outgoing_limit


def test_default_outgoing_limit_is_bounded_by_cores():
    assert default_outgoing_limit(cores=1) == 1
    assert default_outgoing_limit(cores=2) == 2
    assert default_outgoing_limit(cores=64) == 2
    assert default_outgoing_limit(cores=64, maximum=5) == 5


def test_try_acquire_respects_host_and_caller_limits():
    slots = MigrationSlots(2)
    assert slots.try_acquire(limit=1)
    assert not slots.try_acquire(limit=1)   # caller allows only one at a time
    assert slots.try_acquire()              # the host allows two
    assert not slots.try_acquire()
    slots.release()
    assert slots.try_acquire(limit=5)       # a caller cannot raise the host limit
    assert not slots.try_acquire(limit=5)
    assert slots.taken == 2


def test_acquire_waits_for_a_release_and_gives_up_when_cancelled():
    slots = MigrationSlots(1)
    assert slots.try_acquire()
    cancelled = threading.Event()
    got = []
    waiter = threading.Thread(target=lambda: got.append(slots.acquire(cancelled, poll=0.01)))
    waiter.start()
    time.sleep(0.05)
    assert got == []
    slots.release()
    waiter.join(2)
    assert got == [True] and slots.taken == 1

    waiter = threading.Thread(target=lambda: got.append(slots.acquire(cancelled, poll=0.01)))
    waiter.start()
    cancelled.set()
    waiter.join(2)
    assert got == [True, False] and slots.taken == 1


def test_release_without_acquire_is_a_bug():
    with pytest.raises(RuntimeError):
        MigrationSlots(1).release()
    with pytest.raises(ValueError):
        MigrationSlots(0)
