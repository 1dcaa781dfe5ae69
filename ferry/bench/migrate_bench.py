"""`ferry bench migrate`: the run matrix on the lab, each migration measured, baselines beside it.

For each (size, dirty rate) group one workload guest is booted and then migrated back and forth
between lab hosts 1 and 2 in the matrix's order (ferry.bench.matrix): Ferry's migration and bare
virsh's with the same flags one right after the other, the raw TCP throughput for the mode's
stream count just before them. Every migration is watched the same way (CPU by thread kind on
both QEMUs, zero-copy counters) and followed by a full memory verification of the guest.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from ferry.bench import raw_tcp
from ferry.bench.collectors import MigrationWatch, completed_figures
from ferry.bench.drivers import BENCH_BASE_PARAMS, AgentDriver, VirshDriver, lab_agents, lab_flags
from ferry.bench.machine import machine_facts
from ferry.bench.matrix import FERRY, IPERF, Group, Matrix, Step
from ferry.common.errors import OperationFailed
from ferry.lab.network import netns_exec
from ferry.lab.plan import HostPlan

Progress = Callable[[str], None]
BOOT_TIMEOUT_PER_GIB_S = 90.0


def _quiet(_msg: str) -> None:
    pass


def guest_vcpus(matrix: Matrix) -> int:
    """As many vCPUs as the most connections a mode uses: the engine's planner allows at most
    max(2, vCPUs) parallel connections, and every path gets the same guest."""
    return max([m.parallel or 1 for m in matrix.modes] + [1])


class MigrateBench:
    def __init__(self, lab, matrix: Matrix, *, ferry_driver=None, progress: Progress = _quiet,
                 iperf_seconds: float = 3.0, on_record: Callable[[dict], None] | None = None):
        self.lab = lab
        self.matrix = matrix
        urls, self.transport = lab_agents(lab)
        self.ferry = ferry_driver or AgentDriver(urls)
        self.virsh = VirshDriver(self.transport)
        self.progress = progress
        self.iperf_seconds = iperf_seconds
        self.on_record = on_record
        self.records: list[dict] = []

    def _hosts(self) -> tuple[HostPlan, HostPlan]:
        hosts = self.lab.hosts()
        if len(hosts) < 2:
            raise OperationFailed(f"lab {self.lab.lab_id} needs 2 hosts up (run `ferry lab up`), "
                                  f"{len(hosts)} running")
        return hosts[0], hosts[1]

    def run(self) -> dict:
        h1, h2 = self._hosts()
        started = datetime.now(UTC)
        steps = self.matrix.steps()
        done = 0
        for group in self.matrix.groups:
            group_steps = [s for s in steps if s.group == group]
            vm = f"bench-{group.size_mib}-{group.dirty_mib_s}"
            self.lab.destroy_guest(vm)
            self.progress(f"[{group.key}] booting {vm}: {group.size_mib} MiB, filling {group.fill_mib} MiB, "
                          f"dirtying {group.dirty_mib_s} MiB/s")
            guest = self.lab.boot_guest(h1, vm, memory_mib=group.size_mib, fill_mib=group.fill_mib,
                                        dirty_mib_s=group.dirty_mib_s, vcpus=guest_vcpus(self.matrix),
                                        timeout=60 + BOOT_TIMEOUT_PER_GIB_S * group.size_mib / 1024)
            vm_id = guest.spec.effective_uuid
            here = h1
            if hasattr(self.ferry, "adopt"):
                self.ferry.adopt(guest, h1)
            params: dict = {}
            try:
                for step in group_steps:
                    done += 1
                    prefix = f"[{done}/{len(steps)}] {step.label}"
                    there = h2 if here == h1 else h1
                    self.progress(f"{prefix}: {here.name} -> {there.name} ...")
                    if step.kind == IPERF:
                        rec = self._iperf(step, here, there)
                        self.progress(f"{prefix}: {rec['raw']['received_mib_s']:.0f} MiB/s")
                    else:
                        if step.driver == FERRY or step.mode.name not in params:
                            # the pair shares the parameters Ferry plans for this mode
                            params[step.mode.name] = self.ferry.params_for(vm, step.mode, here, there)
                        rec = self._migrate(step, vm, vm_id, here, there, params[step.mode.name])
                        if rec["ok"]:
                            here = there
                        self.progress(f"{prefix}: {_migration_line(rec)}")
                    self._keep(rec)
            finally:
                self.lab.destroy_guest(vm)
                if hasattr(self.ferry, "release"):
                    self.ferry.release(vm)
        return {"kind": "migrate", "started_at": started.isoformat(),
                "ended_at": datetime.now(UTC).isoformat(),
                "ferry_path": getattr(self.ferry, "name", "ferry"),
                "matrix": {"sizes": list(self.matrix.sizes), "modes": [m.name for m in self.matrix.modes],
                           "dirty": list(self.matrix.dirty), "repeat": self.matrix.repeat,
                           "baselines": self.matrix.baselines},
                "params": BENCH_BASE_PARAMS if self.ferry.name == "ferry-agent" else "planned by the engine",
                "guest_vcpus": guest_vcpus(self.matrix), "libvirt_transport": self.transport,
                "iperf_seconds": self.iperf_seconds,
                "machine": machine_facts(self.lab), "records": self.records}

    def _keep(self, rec: dict) -> None:
        self.records.append(rec)
        if self.on_record:
            self.on_record(rec)

    @staticmethod
    def _base(step: Step) -> dict:
        g: Group = step.group
        return {"kind": step.kind, "size_mib": g.size_mib, "dirty_mib_s": g.dirty_mib_s,
                "fill_mib": g.fill_mib, "mode": step.mode.name, "streams": step.mode.streams,
                "repeat": step.repeat, "at": time.time()}

    def _iperf(self, step: Step, src: HostPlan, dst: HostPlan) -> dict:
        raw = raw_tcp.measure(src.address, dst.address, step.mode.streams, seconds=self.iperf_seconds,
                              port=raw_tcp.port_for_lab(self.lab.lab_id),
                              server_prefix=netns_exec(dst, []), client_prefix=netns_exec(src, []))
        return {**self._base(step), "source": src.name, "destination": dst.name, "raw": raw.to_dict()}

    def _migrate(self, step: Step, vm: str, vm_id: str, src: HostPlan, dst: HostPlan, params: dict) -> dict:
        driver = self.ferry if step.driver == FERRY else self.virsh
        src_conn, dst_conn = self.lab.connect(src), self.lab.connect(dst)
        try:
            with MigrationWatch(src_conn, vm, src, dst) as watch:
                outcome = driver.migrate(vm=vm, vm_id=vm_id, src=src, dst=dst, params=params)
            cpu = watch.cpu()
            figures = completed_figures(dst_conn, vm) if outcome.ok else None
        finally:
            src_conn.close()
            dst_conn.close()
        report = self.lab.verify(vm, dst if outcome.ok else src)
        expected = lab_flags(dst, params, transport=self.transport)
        return {**self._base(step), "driver": step.driver, "path": driver.name,
                "source": src.name, "destination": dst.name,
                "ok": outcome.ok, "state": outcome.state, "error": outcome.error,
                "wall_s": round(outcome.wall_s, 3),
                "figures": figures.to_dict() if figures else None,
                "cpu": {side: (split.to_dict() if split else None) for side, split in cpu.items()},
                "zerocopy": watch.zerocopy.to_dict(), "watch_errors": watch.errors,
                "flags": outcome.flags, "typed_params": _jsonable(outcome.typed_params),
                "flags_as_expected": sorted(outcome.flags) == sorted(expected.names),
                "destination_uri": expected.destination_uri,
                "params": {k: v for k, v in params.items() if k != "convergenceSchedule"},
                "verified": bool(report.intact), "verify_reasons": list(report.reasons),
                "verify_passed": [c.name for c in report.checks if c.ok],
                "driver_detail": _jsonable(outcome.detail)}


def _jsonable(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "destination_xml"}


def _migration_line(rec: dict) -> str:
    if not rec["ok"]:
        return f"{rec['state']}: {rec['error']}"
    f = rec["figures"] or {}
    cpu_src = (rec["cpu"].get("source") or {}).get("total")
    cpu_dst = (rec["cpu"].get("destination") or {}).get("total")
    zc = rec["zerocopy"]["state"]
    return (f"wall {rec['wall_s']:.2f} s, QEMU {(_n(f.get('total_ms')) / 1000):.2f} s, "
            f"downtime {f.get('downtime_ms')} ms, {f.get('throughput_mib_s')} MiB/s, "
            f"{f.get('iterations')} it, CPU src {cpu_src} s dst {cpu_dst} s, zero-copy {zc}, "
            f"memory {'verified' if rec['verified'] else 'NOT intact: ' + '; '.join(rec['verify_reasons'])}")


def _n(v) -> float:
    return float(v) if v is not None else float("nan")
