"""QEMU thread kinds and the CPU split, from /proc stat lines."""
from __future__ import annotations

import pytest

from ferry.bench.qemu_threads import (
    MAIN,
    MIG,
    OTHER,
    RECV,
    SEND,
    VCPU,
    ThreadSample,
    parse_stat,
    split_cpu,
    thread_kind,
)


def stat_line(tid: int, comm: str, utime: int, stime: int) -> str:
    return (f"{tid} ({comm}) S 1 {tid} {tid} 0 -1 4194368 100 0 0 0 {utime} {stime} 0 0 20 0 5 0 "
            "12345 1000 200 18446744073709551615")


def test_parse_stat_with_spaces_and_parentheses_in_comm():
    assert parse_stat(stat_line(7, "CPU 0/TCG", 30, 12)) == ThreadSample("CPU 0/TCG", 42)
    assert parse_stat(stat_line(8, "odd) name (x", 1, 2)) == ThreadSample("odd) name (x", 3)


@pytest.mark.parametrize("text", ["", "12 nothing here", "12 (x) S 1 2"])
def test_parse_stat_refuses_garbage(text):
    with pytest.raises(ValueError):
        parse_stat(text)


@pytest.mark.parametrize("comm,tid,kind", [
    ("qemu-system-x86", 100, MAIN), ("qemu-system-x86", 101, OTHER), ("mig/src/main", 102, MIG),
    ("mig/src/return", 103, MIG), ("mig/src/send_3", 104, SEND), ("mig/dst/recv_0", 105, RECV),
    ("mig/dst/main", 106, MIG), ("CPU 0/TCG", 107, VCPU), ("CPU 12/KVM", 108, VCPU), ("IO mon_iothread", 109, OTHER),
    ("CPU helper", 110, OTHER),
])
def test_thread_kinds(comm, tid, kind):
    assert thread_kind(comm, tid, pid=100) == kind


def test_source_split_counts_growth_since_the_baseline_and_new_threads_from_zero():
    base = {100: ThreadSample("qemu-system-x86", 50), 107: ThreadSample("CPU 0/TCG", 1000)}
    last = {100: ThreadSample("qemu-system-x86", 60), 107: ThreadSample("CPU 0/TCG", 1100),
            104: ThreadSample("mig/src/send_0", 30), 102: ThreadSample("mig/src/main", 20)}
    split = split_cpu(100, base, last, 100)
    assert split.by_kind == {MAIN: 0.1, MIG: 0.2, SEND: 0.3, RECV: 0.0, VCPU: 1.0, OTHER: 0.0}
    assert split.total == pytest.approx(1.6)
    assert split.estimated_s == 0


def test_a_reused_tid_with_another_name_counts_from_zero():
    split = split_cpu(1, {5: ThreadSample("old", 500)}, {5: ThreadSample("mig/src/send_1", 40)}, 100)
    assert split.by_kind[SEND] == pytest.approx(0.4)


def test_destination_remainder_goes_to_threads_that_exited_in_proportion():
    last = {200: ThreadSample("qemu-system-x86", 10), 201: ThreadSample("mig/dst/recv_0", 30),
            202: ThreadSample("mig/dst/recv_1", 10), 203: ThreadSample("CPU 0/TCG", 5)}
    # the process grew 75 ticks; the threads seen add up to 55; recv_0/1 exited
    split = split_cpu(200, {}, last, 100, alive_at_end={200, 203}, process_delta_ticks=75)
    assert split.by_kind[RECV] == pytest.approx(0.6)
    assert split.by_kind[MAIN] == pytest.approx(0.1) and split.by_kind[VCPU] == pytest.approx(0.05)
    assert split.estimated_s == pytest.approx(0.2)
    assert split.total == pytest.approx(0.75) and split.complete


def test_no_remainder_when_nothing_exited_or_nothing_is_missing():
    last = {1: ThreadSample("qemu-system-x86", 10)}
    assert split_cpu(1, {}, last, 100, alive_at_end={1}, process_delta_ticks=50).estimated_s == 0
    gone = {1: ThreadSample("qemu-system-x86", 10), 2: ThreadSample("mig/dst/recv_0", 0)}
    split = split_cpu(1, {}, gone, 100, alive_at_end={1}, process_delta_ticks=30)
    assert split.by_kind[RECV] == pytest.approx(0.2)   # seen at zero: an equal share of the rest
