"""Figures from libvirt's completed job stats, and the zero-copy verdict from QEMU's counters."""
from __future__ import annotations

import pytest

from ferry.bench.figures import (
    COPIED,
    ENGAGED,
    OFF,
    UNKNOWN,
    UNSEEN,
    ZeroCopyObservation,
    capability_from,
    figures_from_completed,
    merge_capability,
    merge_query_migrate,
)

# Completed stats as libvirt 11.3 returned them on a lab destination (1 GiB guest, zero-copy x4).
COMPLETED = {"operation": 4, "time_elapsed": 2603, "time_elapsed_net": 2602, "downtime": 193, "downtime_net": 192,
             "setup_time": 3, "data_total": 1074274304, "data_processed": 985724179, "data_remaining": 0,
             "memory_total": 1074274304, "memory_processed": 985724179, "memory_remaining": 0,
             "memory_bps": 440842656, "memory_iteration": 3, "type": 3}


def test_figures_from_completed_stats():
    f = figures_from_completed(COMPLETED)
    assert (f.total_ms, f.downtime_ms, f.setup_ms, f.iterations) == (2603, 193, 3, 3)
    assert f.memory_bytes == 985724179
    assert f.throughput_mib_s == pytest.approx(985724179 / 2**20 / 2.603)
    assert f.to_dict()["throughput_mib_s"] == round(f.throughput_mib_s, 1)


def test_missing_or_zero_time_gives_no_throughput():
    assert figures_from_completed({}).throughput_mib_s is None
    assert figures_from_completed({"memory_processed": 5, "time_elapsed": 0}).throughput_mib_s is None
    assert figures_from_completed({"downtime": True}).downtime_ms is None


def answer(status, missed, syncs, multifd=100):
    return {"status": status, "ram": {"dirty-sync-missed-zero-copy": missed, "dirty-sync-count": syncs,
                                      "multifd-bytes": multifd}}


def observe(*answers, caps=()):
    seen = ZeroCopyObservation(None, None, None)
    for a in answers:
        seen = merge_query_migrate(seen, a)
    for c in caps:
        seen = merge_capability(seen, c)
    return seen


def test_counters_only_grow_and_samples_are_counted():
    seen = observe(answer("active", 0, 1, 10), answer("device", 8, 3, 50), {"status": "completed"})
    assert (seen.missed, seen.syncs, seen.multifd_bytes, seen.samples) == (8, 3, 50, 3)


@pytest.mark.parametrize("answers,caps,state", [
    ([answer("device", 8, 3)], [True], COPIED),          # loopback: the kernel copied
    ([answer("device", 0, 3)], [True], ENGAGED),
    ([answer("active", 0, 1)], [True], UNSEEN),          # never saw a sync that counts
    ([answer("device", 0, 3)], [False], OFF),
    ([answer("device", 0, 3)], [], UNKNOWN),
    ([{"status": "active"}], [True], UNKNOWN),           # an older QEMU without the counter
    ([answer("device", 0, 3)], [False, True, False], ENGAGED),  # on if ever on while active
])
def test_zero_copy_states(answers, caps, state):
    seen = observe(*answers, caps=caps)
    assert seen.state == state
    assert seen.engaged is (state == ENGAGED)
    assert seen.to_dict()["state"] == state


def test_capability_from_query_migrate_capabilities():
    caps = [{"capability": "multifd", "state": True}, {"capability": "zero-copy-send", "state": True}]
    assert capability_from(caps) is True
    assert capability_from([{"capability": "multifd", "state": True}]) is None
    assert capability_from([]) is None
