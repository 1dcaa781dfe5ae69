"""`ferry bench policies`: a workload that dirties memory nearly as fast as the bandwidth cap,
migrated under the engine's built-in policies: did it converge or was it aborted, how long it
took, what downtime and how many iterations.

VM.migrate's parameters for each policy come from the engine's own planner
(`ferry.engine.planner.plan_migration` over the built-in policy, a cluster with default options
and the two lab hosts); the one change made to the plan is `maxBandwidth`, fixed at the cap for
every policy (the planner would divide a cluster bandwidth by each policy's migrations-at-once,
so the policies would not face the same link). Each run is followed by memory verification.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from ferry.bench.collectors import MigrationWatch, completed_figures
from ferry.bench.drivers import AgentDriver, lab_agents
from ferry.bench.machine import machine_facts
from ferry.bench.stats import summarize
from ferry.common.errors import InvalidInput, OperationFailed
from ferry.engine.options import ClusterMigrationOptions, HostMigrationInfo, VmMigrationOverrides, ZeroCopySupport
from ferry.engine.planner import plan_migration
from ferry.engine.policies import MigrationPolicy, find_policy
from ferry.lab.plan import AGENT_PORT, HostPlan

Progress = Callable[[str], None]
DEFAULT_POLICIES = ("Minimal downtime", "Suspend workload if needed", "Very large VMs", "Legacy")
CONVERGED, ABORTED = "converged", "aborted"


def _quiet(_msg: str) -> None:
    pass


def host_info(host: HostPlan) -> HostMigrationInfo:
    """A lab host as the planner sees it: agent on its address, migration network the same."""
    return HostMigrationInfo(name=host.name, address=f"{host.address}:{AGENT_PORT}",
                             migration_address=host.address, migration_network_up=True,
                             zerocopy=ZeroCopySupport.YES)


def policy_params(policy: MigrationPolicy, src: HostPlan, dst: HostPlan, *, cap_mib_s: int,
                  vcpus: int = 1) -> tuple[dict, dict]:
    """(VM.migrate params, the plan as a dict) for `policy`, maxBandwidth fixed at `cap_mib_s`."""
    if isinstance(cap_mib_s, bool) or not isinstance(cap_mib_s, int) or cap_mib_s < 1:
        raise InvalidInput("cap", f"must be a whole number of MiB/s >= 1, got {cap_mib_s!r}")
    plan = plan_migration(ClusterMigrationOptions(policy_id=policy.id), VmMigrationOverrides(), policy,
                          host_info(src), host_info(dst), vcpus=vcpus)
    return replace(plan.params, max_bandwidth=cap_mib_s).to_wire(), plan.to_dict()


def outcome_name(agent_state: str) -> str:
    """The agent's final state in the benchmark's words."""
    return {"succeeded": CONVERGED, "aborted": ABORTED}.get(agent_state, agent_state)


def iterations(figures: dict | None, status: dict, dirty_syncs: int | None) -> int | None:
    """Memory iterations: libvirt's count for a finished migration, else QEMU's dirty-sync count
    seen while it ran (an aborted job's stats are gone with it), else the agent's last poll."""
    if figures and figures.get("iterations"):
        return figures["iterations"]
    return dirty_syncs or status.get("iteration") or None


def parse_policies(text: str) -> list[MigrationPolicy]:
    names = [p.strip() for p in text.split(",") if p.strip()]
    if not names:
        raise InvalidInput("policies", "needs at least one policy name")
    return [find_policy(n, field="policies") for n in names]


def summarize_policy(policy: str, runs: list[dict]) -> dict:
    conv = [r for r in runs if r["outcome"] == CONVERGED]
    return {
        "policy": policy, "runs": len(runs), "converged_runs": len(conv),
        "aborted_runs": sum(1 for r in runs if r["outcome"] == ABORTED),
        "other_runs": sum(1 for r in runs if r["outcome"] not in (CONVERGED, ABORTED)),
        "time_s": _d(summarize(r["wall_s"] for r in runs)),
        "downtime_ms": _d(summarize((r.get("figures") or {}).get("downtime_ms") for r in conv)),
        "iterations": _d(summarize(r.get("iterations") for r in runs)),
        "verified": sum(1 for r in runs if r["verified"]),
        "actions": runs[0]["actions"] if runs else [],
        "flags": runs[0]["flags"] if runs else [],
    }


def _d(s):
    return s.to_dict() if s else None


class PolicyBench:
    def __init__(self, lab, policies: list[MigrationPolicy], *, memory_mib: int = 512, fill_mib: int = 320,
                 dirty_mib_s: int = 32, cap_mib_s: int = 40, repeat: int = 1, progress: Progress = _quiet,
                 timeout_s: float = 600.0):
        if dirty_mib_s * 2 > fill_mib:
            raise InvalidInput("dirty", f"{dirty_mib_s} MiB/s is more than half the {fill_mib} MiB filled per second")
        self.lab = lab
        self.policies = policies
        self.memory_mib, self.fill_mib, self.dirty_mib_s, self.cap_mib_s = memory_mib, fill_mib, dirty_mib_s, cap_mib_s
        self.repeat = repeat
        self.progress = progress
        self.driver = AgentDriver(lab_agents(lab)[0], poll_s=0.2, timeout_s=timeout_s)

    def run(self) -> dict:
        hosts = self.lab.hosts()
        if len(hosts) < 2:
            raise OperationFailed(f"lab {self.lab.lab_id} needs 2 hosts up (run `ferry lab up`)")
        h1, h2 = hosts[0], hosts[1]
        started = datetime.now(UTC)
        vm = "bench-policies"
        self.lab.destroy_guest(vm)
        self.progress(f"booting {vm}: {self.memory_mib} MiB, filling {self.fill_mib} MiB, dirtying "
                      f"{self.dirty_mib_s} MiB/s; bandwidth cap {self.cap_mib_s} MiB/s")
        guest = self.lab.boot_guest(h1, vm, memory_mib=self.memory_mib, fill_mib=self.fill_mib,
                                    dirty_mib_s=self.dirty_mib_s)
        vm_id = guest.spec.effective_uuid
        here = h1
        runs: list[dict] = []
        total = self.repeat * len(self.policies)
        try:
            for r in range(self.repeat):
                for policy in self.policies:
                    there = h2 if here == h1 else h1
                    rec = self._one(policy, r, vm, vm_id, here, there)
                    runs.append(rec)
                    self.progress(f"[{len(runs)}/{total}] {policy.name}: {rec['outcome']} after {rec['wall_s']:.1f} s, "
                                  f"{rec['iterations']} iterations, downtime "
                                  f"{(rec.get('figures') or {}).get('downtime_ms')} ms, actions "
                                  f"{', '.join(a['action'] for a in rec['actions']) or 'none'}; memory "
                                  f"{'verified' if rec['verified'] else 'NOT intact'}")
                    if rec["outcome"] == CONVERGED:
                        here = there
        finally:
            self.lab.destroy_guest(vm)
        return {"kind": "policies", "started_at": started.isoformat(),
                "ended_at": datetime.now(UTC).isoformat(), "ferry_path": self.driver.name,
                "workload": {"memory_mib": self.memory_mib, "fill_mib": self.fill_mib,
                             "dirty_mib_s": self.dirty_mib_s, "cap_mib_s": self.cap_mib_s, "repeat": self.repeat},
                "machine": machine_facts(self.lab), "runs": runs,
                "summary": [summarize_policy(p.name, [x for x in runs if x["policy"] == p.name])
                            for p in self.policies]}

    def _one(self, policy: MigrationPolicy, repeat: int, vm: str, vm_id: str, src: HostPlan, dst: HostPlan) -> dict:
        params, plan = policy_params(policy, src, dst, cap_mib_s=self.cap_mib_s)
        src_conn = self.lab.connect(src)
        try:
            with MigrationWatch(src_conn, vm, src, dst, interval=0.2) as watch:
                outcome = self.driver.migrate(vm=vm, vm_id=vm_id, src=src, dst=dst, params=params)
        finally:
            src_conn.close()
        figures = None
        if outcome.ok:
            conn = self.lab.connect(dst)
            try:
                f = completed_figures(conn, vm)
                figures = f.to_dict() if f else None
            finally:
                conn.close()
        status = outcome.detail
        report = self.lab.verify(vm, dst if outcome.ok else src)
        return {"policy": policy.name, "repeat": repeat, "at": time.time(), "source": src.name,
                "destination": dst.name, "outcome": outcome_name(outcome.state), "error": outcome.error,
                "wall_s": round(outcome.wall_s, 2),
                "iterations": iterations(figures, status, watch.zerocopy.syncs),
                "zerocopy": watch.zerocopy.to_dict(),
                "last_dirty_rate_bps": status.get("dirtyRate"), "figures": figures,
                "actions": [{"n": a.get("n"), "action": a.get("action"), "ok": a.get("ok")}
                            for a in status.get("scheduleActions") or []],
                "flags": outcome.flags, "params": {k: v for k, v in params.items() if k != "convergenceSchedule"},
                "schedule": params.get("convergenceSchedule"), "plan_explanation": plan.get("explanation"),
                "verified": bool(report.intact), "verify_reasons": list(report.reasons)}
