"""Measurements taken at the edges while a migration runs: QEMU threads' CPU, zero-copy, job stats.

`MigrationWatch` starts before a migration and stops after it: one thread samples the source and
destination QEMU processes' threads (/proc/<pid>/task/*/stat) every `interval` s and asks the
source QEMU (query-migrate through libvirt's monitor pass-through, in ferry.lab.qemu_monitor)
for zero-copy counters. The same watch runs around Ferry's and bare virsh's migrations, so both
pay the same probing cost.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from ferry.bench.figures import (
    JobFigures,
    ZeroCopyObservation,
    capability_from,
    figures_from_completed,
    merge_capability,
    merge_query_migrate,
)
from ferry.bench.qemu_threads import CpuSplit, ThreadSample, parse_stat, split_cpu
from ferry.lab import qemu_monitor
from ferry.lab.plan import HostPlan

TICKS_PER_S = os.sysconf("SC_CLK_TCK")
QMP_EVERY_S = 0.1
ACTIVE = ("active", "device", "pre-switchover", "postcopy-active")


def qemu_pidfile(host: HostPlan, vm: str) -> Path:
    """Where the host's libvirtd keeps the VM's QEMU pid, seen from outside the host."""
    return host.outside(f"/run/libvirt/qemu/{vm}.pid")


def qemu_pid(host: HostPlan, vm: str) -> int | None:
    """The running QEMU of `vm` on `host`, or None."""
    try:
        pid = int(qemu_pidfile(host, vm).read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None
    return pid if "qemu" in os.path.basename(exe) else None


def read_threads(pid: int) -> dict[int, ThreadSample]:
    out: dict[int, ThreadSample] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                out[int(tid)] = parse_stat(f.read())
        except (OSError, ValueError):
            continue
    return out


def read_process_ticks(pid: int) -> int | None:
    """The whole process's utime + stime (threads that exited included)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return parse_stat(f.read()).ticks
    except (OSError, ValueError):
        return None


class _ProcessTrack:
    """One QEMU process: its threads' first and last samples, and the process total with them.

    The process total includes threads that have exited, so what an exited thread used after its
    last sample shows up as the total's growth beyond the per-thread sum; it is read at the end
    while the process lives (the destination) or else at the last sample that saw it (the source,
    which exits when the migration ends)."""

    def __init__(self, pid: int, with_baseline: bool):
        self.pid = pid
        self.baseline = read_threads(pid) if with_baseline else {}
        self.start_ticks = read_process_ticks(pid) if with_baseline else 0
        self.last: dict[int, ThreadSample] = dict(self.baseline)
        self.last_ticks: int | None = self.start_ticks
        self.last_alive: set[int] = set(self.baseline)
        self.gone = False

    def sample(self) -> bool:
        now = read_threads(self.pid)
        ticks = read_process_ticks(self.pid)
        if not now or ticks is None:
            self.gone = True
            return False
        self.last.update(now)
        self.last_ticks, self.last_alive = ticks, set(now)
        return True

    def result(self) -> CpuSplit:
        alive_now = not self.gone and self.sample()
        delta = None if self.last_ticks is None or self.start_ticks is None else self.last_ticks - self.start_ticks
        split = split_cpu(self.pid, self.baseline, self.last, TICKS_PER_S, alive_at_end=self.last_alive,
                          process_delta_ticks=delta)
        return CpuSplit(split.by_kind, split.estimated_s, split.threads, complete=alive_now)


class MigrationWatch:
    """Samples both QEMUs and the source's zero-copy counters while a migration runs."""

    def __init__(self, source_conn, vm: str, src: HostPlan, dst: HostPlan, *, interval: float = 0.1):
        self.conn = source_conn
        self.vm = vm
        self.src, self.dst = src, dst
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"bench-watch-{vm}", daemon=True)
        self.source: _ProcessTrack | None = None
        self.destination: _ProcessTrack | None = None
        self.zerocopy = ZeroCopyObservation(None, None, None)
        self.errors: list[str] = []

    def __enter__(self) -> MigrationWatch:
        pid = qemu_pid(self.src, self.vm)
        if pid is None:
            raise RuntimeError(f"{self.vm} has no running QEMU on {self.src.name}")
        self.source = _ProcessTrack(pid, with_baseline=True)
        self._source_pid = pid
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        try:
            dom = self.conn.lookupByName(self.vm)
        except Exception as exc:  # noqa: BLE001 - reported, the migration goes on
            self.errors.append(f"lookup: {exc}")
            dom = None
        next_qmp = 0.0
        while not self._stop.is_set():
            if self.source is not None:
                self.source.sample()
            if self.destination is None:
                pid = qemu_pid(self.dst, self.vm)
                if pid is not None and pid != self._source_pid:
                    self.destination = _ProcessTrack(pid, with_baseline=False)
            if self.destination is not None:
                self.destination.sample()
            if dom is not None and time.monotonic() >= next_qmp:
                next_qmp = time.monotonic() + QMP_EVERY_S
                self._query(dom)
            self._stop.wait(self.interval)
        if self.destination is None:  # a very short migration: catch the destination at the end
            pid = qemu_pid(self.dst, self.vm)
            if pid is not None and pid != self._source_pid:
                self.destination = _ProcessTrack(pid, with_baseline=False)
                self.destination.sample()

    def _query(self, dom) -> None:
        """query-migrate, and while the migration is active the zero-copy-send capability (libvirt
        sets it just before and resets it just after, so only active readings count)."""
        try:
            answer = qemu_monitor.query_migrate(dom)
            if answer.get("status") not in ACTIVE:
                return
            caps = qemu_monitor.migrate_capabilities(dom)
        except Exception:  # noqa: BLE001 - the source QEMU is gone once the migration ends
            return
        self.zerocopy = merge_capability(merge_query_migrate(self.zerocopy, answer), capability_from(caps))

    def cpu(self) -> dict[str, CpuSplit | None]:
        return {"source": self.source.result() if self.source else None,
                "destination": self.destination.result() if self.destination else None}


def completed_figures(dest_conn, vm: str) -> JobFigures | None:
    """The destination's completed-job statistics of the migration that just arrived."""
    stats = qemu_monitor.completed_job_stats(dest_conn, vm)
    return figures_from_completed(stats) if stats else None
