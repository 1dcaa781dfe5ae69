"""QEMU's CPU time by thread kind, from /proc/<pid>/task/*/stat samples (pure).

QEMU 10 names its threads: the main loop keeps the program's name (tid == pid), migration
threads are `mig/src/main`, `mig/src/return`, `mig/src/send_N` on the source and
`mig/dst/recv_N` (and other `mig/dst/...`) on the destination, vCPU threads `CPU n/TCG` or
`CPU n/KVM`. Migration threads exit when the migration ends (and the source QEMU exits
altogether), so a collector samples every thread's time while the migration runs and keeps
the last value seen per thread; what a thread used after its last sample is estimated from
the process total where the process is still there to ask (the destination).
"""
from __future__ import annotations

from dataclasses import dataclass

MAIN, MIG, SEND, RECV, VCPU, OTHER = "main", "mig", "send", "recv", "vcpu", "other"
KINDS = (MAIN, MIG, SEND, RECV, VCPU, OTHER)
KIND_TEXT = {
    MAIN: "QEMU main loop",
    MIG: "migration control (mig/src/main, mig/src/return, mig/dst/...)",
    SEND: "multifd send (mig/src/send_N)",
    RECV: "multifd receive (mig/dst/recv_N)",
    VCPU: "vCPUs (CPU n/TCG|KVM)",
    OTHER: "everything else (I/O, RCU, monitor)",
}


@dataclass(frozen=True)
class ThreadSample:
    comm: str
    ticks: int      # utime + stime, in clock ticks


def parse_stat(text: str) -> ThreadSample:
    """One /proc/.../stat line -> (comm, utime + stime). comm may hold spaces and ')'."""
    head, sep, rest = text.rpartition(")")
    if not sep or "(" not in head:
        raise ValueError(f"not a /proc stat line: {text[:80]!r}")
    comm = head.partition("(")[2]
    fields = rest.split()
    if len(fields) < 13:
        raise ValueError(f"/proc stat line too short: {text[:80]!r}")
    # After ')': state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime
    return ThreadSample(comm, int(fields[11]) + int(fields[12]))


def thread_kind(comm: str, tid: int, pid: int) -> str:
    if tid == pid:
        return MAIN
    if comm.startswith("mig/"):
        leaf = comm.rsplit("/", 1)[-1]
        if leaf.startswith("send"):
            return SEND
        if leaf.startswith("recv"):
            return RECV
        return MIG
    if comm.startswith("CPU ") and ("/TCG" in comm or "/KVM" in comm):
        return VCPU
    return OTHER


@dataclass(frozen=True)
class CpuSplit:
    """CPU seconds a QEMU process used during a migration, by thread kind."""

    by_kind: dict            # kind -> seconds
    estimated_s: float = 0.0  # part of by_kind estimated for threads that exited after their last sample
    threads: int = 0          # threads seen
    complete: bool = True     # False: the process ended before a final sample (its last moments are missing)

    @property
    def total(self) -> float:
        return sum(self.by_kind.values())

    def to_dict(self) -> dict:
        return {"by_kind": {k: round(v, 3) for k, v in self.by_kind.items()},
                "total": round(self.total, 3), "estimated_s": round(self.estimated_s, 3),
                "threads": self.threads, "complete": self.complete}


def split_cpu(pid: int, baseline: dict[int, ThreadSample], last: dict[int, ThreadSample],
              ticks_per_s: int, *, alive_at_end: set[int] | None = None,
              process_delta_ticks: int | None = None) -> CpuSplit:
    """Per-kind CPU seconds between `baseline` and the `last` sample seen of each thread.

    `baseline`: threads at the start (empty for a process that started during the migration).
    `process_delta_ticks`: the process's own utime+stime growth over the same span (it includes
    threads that have exited), when the process is still there at the end; the part it has
    beyond the per-thread sum is what exited threads used after their last sample, shared among
    them in proportion to what each was seen using. `alive_at_end`: tids present at the end.
    """
    by_kind = {k: 0.0 for k in KINDS}
    per_tid: dict[int, int] = {}
    for tid, sample in last.items():
        before = baseline.get(tid)
        start = before.ticks if before is not None and before.comm == sample.comm else 0
        per_tid[tid] = max(0, sample.ticks - start)
        by_kind[thread_kind(sample.comm, tid, pid)] += per_tid[tid] / ticks_per_s
    estimated = 0.0
    if process_delta_ticks is not None:
        remainder = process_delta_ticks - sum(per_tid.values())
        exited = [t for t in per_tid if alive_at_end is not None and t not in alive_at_end]
        weight = sum(per_tid[t] for t in exited)
        if remainder > 0 and exited:
            for tid in exited:
                share = (remainder * per_tid[tid] / weight) if weight else remainder / len(exited)
                by_kind[thread_kind(last[tid].comm, tid, pid)] += share / ticks_per_s
            estimated = remainder / ticks_per_s
    return CpuSplit(by_kind, estimated, len(last))
