"""`ferry bench policies`: a workload that dirties memory nearly as fast as the bandwidth cap,
migrated under the engine's built-in policies: did it converge or was it aborted, how long it
took, what downtime and how many iterations.

VM.migrate's parameters for each policy come from the engine's own planner
(`ferry.engine.planner.plan_migration` over the built-in policy, a cluster with default options
and the two lab hosts); the one change made to the plan is `maxBandwidth`, fixed at the cap for
every policy (the planner would divide a cluster bandwidth by each policy's migrations-at-once,
so the policies would not face the same link). Each run is followed by memory verification.

Issue 17 item 3: Ferry's own "Adaptive" policy can be added (`--policies ...,Adaptive`), and
harder workloads (`workloads`: guest sizes x dirty rates as a percentage of the cap, e.g.
512-4096 MiB at 50/80/100/120%). An adaptive run first measures the guest's dirty rate with
the source agent's VM.getDirtyRate (4 s, not counted in the migration's time), as the engine
would before it plans, and hands it to the agent in `adaptive.dirtyRateMiBs`.
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
from ferry.common.jsonrpc import JsonRpcClient, JsonRpcError
from ferry.engine.options import (
    ClusterMigrationOptions,
    HostMigrationInfo,
    ParallelMode,
    ParallelSetting,
    VmMigrationOverrides,
    ZeroCopySupport,
)
from ferry.engine.planner import plan_migration
from ferry.engine.policies import MigrationPolicy, find_policy
from ferry.lab.plan import AGENT_PORT, HostPlan
from ferry.pki import engine_client_tls

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
                  vcpus: int = 1, parallel: int | None = None,
                  dirty_rate_mibs: float | None = None, touched_mib: float | None = None) -> tuple[dict, dict]:
    """(VM.migrate params, the plan as a dict) for `policy`, maxBandwidth fixed at `cap_mib_s`.

    `parallel`: a cluster with that many parallel connections (CUSTOM); `dirty_rate_mibs`: a
    dirty rate measured before the start, handed to an adaptive policy's agent."""
    if isinstance(cap_mib_s, bool) or not isinstance(cap_mib_s, int) or cap_mib_s < 1:
        raise InvalidInput("cap", f"must be a whole number of MiB/s >= 1, got {cap_mib_s!r}")
    setting = (ParallelSetting(ParallelMode.CUSTOM, parallel) if parallel
               else ParallelSetting(ParallelMode.DISABLED))
    plan = plan_migration(ClusterMigrationOptions(policy_id=policy.id, parallel=setting), VmMigrationOverrides(),
                          policy, host_info(src), host_info(dst), vcpus=max(vcpus, parallel or 1))
    params = replace(plan.params, max_bandwidth=cap_mib_s)
    if params.adaptive is not None and dirty_rate_mibs is not None:
        params = replace(params, adaptive=replace(params.adaptive, dirty_rate_mibs=round(dirty_rate_mibs, 1)))
    if params.adaptive is not None and touched_mib is not None:
        params = replace(params, adaptive=replace(params.adaptive, touched_mib=round(touched_mib, 1)))
    return params.to_wire(), plan.to_dict()


def outcome_name(agent_state: str) -> str:
    """The agent's final state in the benchmark's words."""
    return {"succeeded": CONVERGED, "aborted": ABORTED}.get(agent_state, agent_state)


def iterations(figures: dict | None, status: dict, dirty_syncs: int | None) -> int | None:
    """Memory iterations: libvirt's count for a finished migration, else QEMU's dirty-sync count
    seen while it ran (an aborted job's stats are gone with it), else the agent's last poll."""
    if figures and figures.get("iterations"):
        return figures["iterations"]
    return dirty_syncs or status.get("iteration") or None


def parse_workloads(text: str, cap_mib_s: int) -> list[tuple[int, int]]:
    """'512:50,1024:120' -> [(memory MiB, dirty MiB/s)], the dirty rate a percentage of the cap."""
    out = []
    for item in (x.strip() for x in text.split(",") if x.strip()):
        size, _, pct = item.partition(":")
        if not (size.isdigit() and pct.isdigit()) or not 256 <= int(size) <= 16384 or not 1 <= int(pct) <= 400:
            raise InvalidInput("workloads", f"each item is MiB:percent-of-cap (256..16384:1..400), got {item!r}")
        out.append((int(size), max(1, round(cap_mib_s * int(pct) / 100))))
    if not out:
        raise InvalidInput("workloads", "needs at least one MiB:percent item")
    return out


def parse_policies(text: str) -> list[MigrationPolicy]:
    names = [p.strip() for p in text.split(",") if p.strip()]
    if not names:
        raise InvalidInput("policies", "needs at least one policy name")
    return [find_policy(n, field="policies") for n in names]


def summarize_policy(policy: str, runs: list[dict]) -> dict:
    conv = [r for r in runs if r["outcome"] == CONVERGED]
    first = runs[0] if runs else {}
    return {
        "policy": policy, "memory_mib": first.get("memory_mib"), "dirty_mib_s": first.get("dirty_mib_s"),
        "runs": len(runs), "converged_runs": len(conv),
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
                 timeout_s: float = 600.0, workloads: list[tuple[int, int]] | None = None):
        self.workloads = workloads or [(memory_mib, dirty_mib_s)]
        for mem, dirty in self.workloads:
            fill = self._fill(mem, fill_mib, memory_mib)
            if dirty * 2 > fill:
                raise InvalidInput("dirty", f"{dirty} MiB/s is more than half the {fill} MiB filled per second")
        self.lab = lab
        self.policies = policies
        self.memory_mib, self.fill_mib, self.dirty_mib_s, self.cap_mib_s = memory_mib, fill_mib, dirty_mib_s, cap_mib_s
        self.repeat = repeat
        self.progress = progress
        self.driver = AgentDriver(lab_agents(lab)[0], poll_s=0.2, timeout_s=timeout_s)

    @staticmethod
    def _fill(memory: int, fill_mib: int, base_memory: int) -> int:
        """The fill for a guest of `memory` MiB: as given for the base size, else the same share."""
        return fill_mib if memory == base_memory else memory * fill_mib // base_memory

    def run(self) -> dict:
        hosts = self.lab.hosts()
        if len(hosts) < 2:
            raise OperationFailed(f"lab {self.lab.lab_id} needs 2 hosts up (run `ferry lab up`)")
        started = datetime.now(UTC)
        runs: list[dict] = []
        keys = []
        for mem, dirty in self.workloads:
            runs += self._workload(hosts[0], hosts[1], mem, dirty, len(runs))
            keys += [(p.name, mem, dirty) for p in self.policies]
        return {"kind": "policies", "started_at": started.isoformat(),
                "ended_at": datetime.now(UTC).isoformat(), "ferry_path": self.driver.name,
                "workload": {"memory_mib": self.memory_mib, "fill_mib": self.fill_mib,
                             "dirty_mib_s": self.dirty_mib_s, "cap_mib_s": self.cap_mib_s, "repeat": self.repeat,
                             "workloads": [{"memory_mib": m, "dirty_mib_s": d} for m, d in self.workloads]},
                "machine": machine_facts(self.lab), "runs": runs,
                "summary": [summarize_policy(name, [x for x in runs if (x["policy"], x["memory_mib"],
                                                                         x["dirty_mib_s"]) == (name, m, d)])
                            for name, m, d in keys]}

    def _workload(self, h1: HostPlan, h2: HostPlan, memory: int, dirty: int, done: int) -> list[dict]:
        vm = "bench-policies"
        fill = self._fill(memory, self.fill_mib, self.memory_mib)
        self.lab.destroy_guest(vm)
        self.progress(f"booting {vm}: {memory} MiB, filling {fill} MiB, dirtying "
                      f"{dirty} MiB/s; bandwidth cap {self.cap_mib_s} MiB/s")
        guest = self.lab.boot_guest(h1, vm, memory_mib=memory, fill_mib=fill, dirty_mib_s=dirty)
        vm_id = guest.spec.effective_uuid
        here = h1
        runs: list[dict] = []
        total = self.repeat * len(self.policies) * len(self.workloads)
        try:
            for r in range(self.repeat):
                for policy in self.policies:
                    there = h2 if here == h1 else h1
                    rec = {"memory_mib": memory, "dirty_mib_s": dirty,
                           **self._one(policy, r, vm, vm_id, here, there)}
                    runs.append(rec)
                    self.progress(f"[{done + len(runs)}/{total}] {memory} MiB at {dirty} MiB/s, {policy.name}: "
                                  f"{rec['outcome']} after {rec['wall_s']:.1f} s, "
                                  f"{rec['iterations']} iterations, downtime "
                                  f"{(rec.get('figures') or {}).get('downtime_ms')} ms, actions "
                                  f"{', '.join(a['action'] for a in rec['actions']) or 'none'}; memory "
                                  f"{'verified' if rec['verified'] else 'NOT intact'}")
                    if rec["outcome"] == CONVERGED:
                        here = there
        finally:
            self.lab.destroy_guest(vm)
        return runs

    def _measured_rate(self, src: HostPlan, vm_id: str) -> float | None:
        """VM.getDirtyRate on the source agent, as the engine would measure before planning."""
        client = JsonRpcClient(src.agent_url, timeout=30, tls=engine_client_tls())
        try:
            return client.call("VM.getDirtyRate", {"vmID": vm_id, "seconds": 4})["estimate"]["estimateMiBs"]
        except (JsonRpcError, KeyError, TypeError) as exc:
            self.progress(f"dirty-rate measurement failed ({exc}); Adaptive runs without it")
            return None

    def _one(self, policy: MigrationPolicy, repeat: int, vm: str, vm_id: str, src: HostPlan, dst: HostPlan) -> dict:
        rate = self._measured_rate(src, vm_id) if policy.adaptive_max_downtime_ms else None
        params, plan = policy_params(policy, src, dst, cap_mib_s=self.cap_mib_s, dirty_rate_mibs=rate)
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
                "measured_dirty_mib_s": rate,
                "actions": [{"n": a.get("n"), "action": a.get("action"), "ok": a.get("ok"), "reason": a.get("reason")}
                            for a in status.get("scheduleActions") or []],
                "flags": outcome.flags, "params": {k: v for k, v in params.items() if k != "convergenceSchedule"},
                "schedule": params.get("convergenceSchedule"), "plan_explanation": plan.get("explanation"),
                "verified": bool(report.intact), "verify_reasons": list(report.reasons)}
