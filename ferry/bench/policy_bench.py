"""`ferry bench policies`: a workload that dirties memory nearly as fast as the bandwidth cap,
migrated under the engine's built-in policies: did it converge or was it aborted, how long it
took, what downtime and how many iterations.

VM.migrate's parameters for each policy come from the engine's own planner
(`ferry.engine.planner.plan_migration` over the built-in policy, a cluster with default options
and the two lab hosts); the one change made to the plan is `maxBandwidth`, fixed at the cap for
every policy (the planner would divide a cluster bandwidth by each policy's migrations-at-once,
so the policies would not face the same link). Each run is followed by memory verification.

Issue 17 item 3: Ferry's own "Adaptive" policy can be added (`--policies ...,Adaptive`), and
harder workloads (`workloads`: guest sizes x dirty rates as a percentage of the cap, each with
its own fill and cap if given, e.g. 512-4096 MiB at 50/80/100/120%). An adaptive run first
measures the guest's dirty rate and touched memory with the source agent's VM.getDirtyRate
(4 s, not counted in the migration's time), as the engine would before it plans, and hands
them to the agent (`adaptive.dirtyRateMiBs`, `adaptive.touchedMiB`). A *doomed* workload
(`doomed`) runs Adaptive with parallel connections (so no post-copy on QEMU 10.0) beside the
iteration-based schedules, to compare how early each gives up. A run's raw result can be
stored and several merged into one report (`merge`), so a long matrix is measured in parts.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
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
from ferry.protocol.migrate_params import MigrateParams

Progress = Callable[[str], None]
DEFAULT_POLICIES = ("Minimal downtime", "Suspend workload if needed", "Very large VMs", "Legacy")
CONVERGED, ABORTED = "converged", "aborted"
DOOMED_PARALLEL = 2     # connections an adaptive run of a doomed workload uses (no post-copy then)


@dataclass(frozen=True)
class Workload:
    memory_mib: int
    dirty_mib_s: int
    fill_mib: int
    cap_mib_s: int
    doomed: bool = False

    @property
    def key(self) -> tuple:
        return (self.memory_mib, self.dirty_mib_s, self.cap_mib_s, self.doomed)

    def to_dict(self) -> dict:
        return {"memory_mib": self.memory_mib, "dirty_mib_s": self.dirty_mib_s, "fill_mib": self.fill_mib,
                "cap_mib_s": self.cap_mib_s, "doomed": self.doomed}


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


def parse_workloads(text: str, cap_mib_s: int, *, fill_mib: int = 320, base_memory_mib: int = 512,
                    doomed: bool = False, field: str = "workloads") -> list[Workload]:
    """'512:50,1024:120:640@80' -> Workloads: MiB:percent-of-cap[:fill MiB][@cap MiB/s]; the fill
    defaults to `fill_mib`'s share of `base_memory_mib`, the cap to `cap_mib_s`."""
    out = []
    for item in (x.strip() for x in text.split(",") if x.strip()):
        body, _, cap = item.partition("@")
        size, _, rest = body.partition(":")
        pct, _, fill = rest.partition(":")
        ok = size.isdigit() and pct.isdigit() and (not fill or fill.isdigit()) and (not cap or cap.isdigit())
        if not ok or not 256 <= int(size) <= 16384 or not 1 <= int(pct) <= 400:
            raise InvalidInput(field, "each item is MiB:percent-of-cap[:fillMiB][@capMiBs] "
                                      f"(256..16384:1..400), got {item!r}")
        c = int(cap) if cap else cap_mib_s
        f = int(fill) if fill else PolicyBench._fill(int(size), fill_mib, base_memory_mib)
        if c < 1 or not 16 <= f <= int(size):
            raise InvalidInput(field, f"cap must be >= 1 and fill 16..{size} MiB, got {item!r}")
        out.append(Workload(int(size), max(1, round(c * int(pct) / 100)), f, c, doomed))
    if not out:
        raise InvalidInput(field, "needs at least one MiB:percent item")
    return out


def parse_policies(text: str) -> list[MigrationPolicy]:
    names = [p.strip() for p in text.split(",") if p.strip()]
    if not names:
        raise InvalidInput("policies", "needs at least one policy name")
    return [find_policy(n, field="policies") for n in names]


def run_downtime(run: dict) -> int | None:
    """A converged run's downtime: libvirt's completed figure, else the agent's (QEMU's, after a
    switch to post-copy, which libvirt does not report)."""
    return (run.get("figures") or {}).get("downtime_ms") or run.get("agent_downtime_ms")


def run_key(run: dict) -> tuple:
    return (run["policy"], run["memory_mib"], run["dirty_mib_s"], run.get("cap_mib_s"), bool(run.get("doomed")))


def summaries(runs: list[dict]) -> list[dict]:
    """One summary per (policy, workload), in the order first run."""
    keys = list(dict.fromkeys(run_key(r) for r in runs))
    return [summarize_policy(k[0], [r for r in runs if run_key(r) == k]) for k in keys]


def _workload_key(run: dict) -> tuple:
    return run_key(run)[1:]


def merge(results: list[dict]) -> dict:
    """Several raw results of `ferry bench policies` (parts of one matrix) as one. A workload
    measured again in a later part replaces the earlier part's runs of it (all its policies:
    a workload's runs stay side by side from one hold)."""
    if not results or any(r.get("kind") != "policies" for r in results):
        raise InvalidInput("merge", "needs raw results of `ferry bench policies` (kind policies)")
    runs: list[dict] = []
    for r in results:
        again = {_workload_key(x) for x in r["runs"]}
        runs = [x for x in runs if _workload_key(x) not in again] + list(r["runs"])
    first = results[0]
    loads = [w for r in results for w in r["workload"].get("workloads") or []]
    return {**first, "started_at": min(r["started_at"] for r in results),
            "ended_at": max(r["ended_at"] for r in results),
            "parts": [part for r in results for part in _parts(r)],
            "workload": {**first["workload"], "workloads": loads}, "runs": runs, "summary": summaries(runs)}


def action_record(a: dict) -> dict:
    """What the raw result keeps of one schedule action (a deferred abort says why it waited)."""
    kept = {"n": a.get("n"), "action": a.get("action"), "ok": a.get("ok"), "reason": a.get("reason")}
    if a.get("deferred"):
        kept["deferred"] = a["deferred"]
    return kept


def _parts(result: dict) -> list[dict]:
    """The holds a raw result was measured in: its own, or those of a result merged before."""
    if result.get("parts"):
        return list(result["parts"])
    return [{"started_at": result["started_at"], "ended_at": result["ended_at"],
             "load_avg_at_start": result["machine"].get("load_avg_at_start"),
             "workloads": result["workload"].get("workloads")}]


def summarize_policy(policy: str, runs: list[dict]) -> dict:
    conv = [r for r in runs if r["outcome"] == CONVERGED]
    first = runs[0] if runs else {}
    return {
        "policy": policy, "memory_mib": first.get("memory_mib"), "dirty_mib_s": first.get("dirty_mib_s"),
        "cap_mib_s": first.get("cap_mib_s"), "fill_mib": first.get("fill_mib"), "doomed": bool(first.get("doomed")),
        "measured_dirty_mib_s": first.get("measured_dirty_mib_s"), "touched_mib": first.get("touched_mib"),
        "postcopy_runs": sum(1 for r in conv if r.get("postcopy")),
        "downtime_bound_ms": first.get("downtime_bound_ms"),
        "runs": len(runs), "converged_runs": len(conv),
        "aborted_runs": sum(1 for r in runs if r["outcome"] == ABORTED),
        "other_runs": sum(1 for r in runs if r["outcome"] not in (CONVERGED, ABORTED)),
        "time_s": _d(summarize(r["wall_s"] for r in runs)),
        "downtime_ms": _d(summarize(run_downtime(r) for r in conv)),
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
                 timeout_s: float = 600.0, workloads: list[Workload] | None = None,
                 doomed: list[Workload] | None = None, doomed_policies: list[MigrationPolicy] | None = None,
                 checkpoint: Callable[[dict], None] | None = None):
        base = [] if (workloads or doomed) else [Workload(memory_mib, dirty_mib_s, fill_mib, cap_mib_s)]
        self.workloads = [*(doomed or []), *(workloads or base)]   # doomed first: short, and kept if cut
        for w in self.workloads:
            if w.dirty_mib_s * 2 > w.fill_mib:
                raise InvalidInput("dirty", f"{w.dirty_mib_s} MiB/s is more than half the {w.fill_mib} MiB filled "
                                            "per second")
        self.lab = lab
        self.policies = policies
        self.doomed_policies = doomed_policies or policies
        self.memory_mib, self.fill_mib, self.dirty_mib_s, self.cap_mib_s = memory_mib, fill_mib, dirty_mib_s, cap_mib_s
        self.repeat = repeat
        self.progress = progress
        self.driver = AgentDriver(lab_agents(lab)[0], poll_s=0.2, timeout_s=timeout_s)
        self.checkpoint = checkpoint     # called with the result so far after each workload

    @staticmethod
    def _fill(memory: int, fill_mib: int, base_memory: int) -> int:
        """The fill for a guest of `memory` MiB: as given for the base size, else the same share."""
        return fill_mib if memory == base_memory else memory * fill_mib // base_memory

    def _policies(self, w: Workload) -> list[MigrationPolicy]:
        return self.doomed_policies if w.doomed else self.policies

    def run(self) -> dict:
        hosts = self.lab.hosts()
        if len(hosts) < 2:
            raise OperationFailed(f"lab {self.lab.lab_id} needs 2 hosts up (run `ferry lab up`)")
        started = datetime.now(UTC)
        machine = machine_facts(self.lab)
        runs: list[dict] = []
        total = self.repeat * sum(len(self._policies(w)) for w in self.workloads)
        for i, w in enumerate(self.workloads):
            runs += self._workload(hosts[0], hosts[1], w, len(runs), total)
            if self.checkpoint:
                self.checkpoint(self._result(started, machine, runs, self.workloads[:i + 1]))
        return self._result(started, machine, runs, self.workloads)

    def _result(self, started, machine: dict, runs: list[dict], workloads: list[Workload]) -> dict:
        return {"kind": "policies", "started_at": started.isoformat(),
                "ended_at": datetime.now(UTC).isoformat(), "ferry_path": self.driver.name,
                "workload": {"memory_mib": self.memory_mib, "fill_mib": self.fill_mib,
                             "dirty_mib_s": self.dirty_mib_s, "cap_mib_s": self.cap_mib_s, "repeat": self.repeat,
                             "workloads": [w.to_dict() for w in workloads]},
                "machine": machine, "runs": runs, "summary": summaries(runs)}

    def _workload(self, h1: HostPlan, h2: HostPlan, w: Workload, done: int, total: int) -> list[dict]:
        vm = "bench-policies"
        self.lab.destroy_guest(vm)
        self.progress(f"booting {vm}: {w.memory_mib} MiB, filling {w.fill_mib} MiB, dirtying "
                      f"{w.dirty_mib_s} MiB/s; bandwidth cap {w.cap_mib_s} MiB/s{'; doomed case' if w.doomed else ''}")
        guest = self.lab.boot_guest(h1, vm, memory_mib=w.memory_mib, fill_mib=w.fill_mib, dirty_mib_s=w.dirty_mib_s)
        vm_id = guest.spec.effective_uuid
        here = h1
        runs: list[dict] = []
        try:
            for r in range(self.repeat):
                for policy in self._policies(w):
                    there = h2 if here == h1 else h1
                    rec = {**w.to_dict(), "load_avg": [round(x, 2) for x in os.getloadavg()],
                           **self._one(policy, r, vm, vm_id, here, there, w)}
                    runs.append(rec)
                    self.progress(f"[{done + len(runs)}/{total}] {w.memory_mib} MiB at {w.dirty_mib_s} MiB/s "
                                  f"(cap {w.cap_mib_s}), {policy.name}: {rec['outcome']} after {rec['wall_s']:.1f} s, "
                                  f"{rec['iterations']} iterations, downtime {run_downtime(rec)} ms"
                                  f"{' (post-copy)' if rec.get('postcopy') else ''}, actions "
                                  f"{', '.join(a['action'] for a in rec['actions']) or 'none'}; memory "
                                  f"{'verified' if rec['verified'] else 'NOT intact'}")
                    if rec["outcome"] == CONVERGED:
                        here = there
        finally:
            self.lab.destroy_guest(vm)
        return runs

    def _measured(self, src: HostPlan, vm_id: str) -> tuple[float | None, float | None]:
        """VM.getDirtyRate on the source agent, as the engine would measure before planning:
        (dirty rate MiB/s, touched MiB)."""
        client = JsonRpcClient(src.agent_url, timeout=30, tls=engine_client_tls())
        try:
            answer = client.call("VM.getDirtyRate", {"vmID": vm_id, "seconds": 4})
            return answer["estimate"]["estimateMiBs"], answer.get("touchedMiB")
        except (JsonRpcError, KeyError, TypeError) as exc:
            self.progress(f"dirty-rate measurement failed ({exc}); Adaptive runs without it")
            return None, None

    def _one(self, policy: MigrationPolicy, repeat: int, vm: str, vm_id: str, src: HostPlan, dst: HostPlan,
             w: Workload) -> dict:
        adaptive = bool(policy.adaptive_max_downtime_ms)
        rate, touched = self._measured(src, vm_id) if adaptive else (None, None)
        parallel = DOOMED_PARALLEL if (w.doomed and adaptive) else None
        params, plan = policy_params(policy, src, dst, cap_mib_s=w.cap_mib_s, parallel=parallel,
                                     dirty_rate_mibs=rate, touched_mib=touched)
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
                "message": status.get("message"), "wall_s": round(outcome.wall_s, 2),
                "agent_total_ms": status.get("totalTime"),
                "iterations": iterations(figures, status, watch.zerocopy.syncs),
                "zerocopy": watch.zerocopy.to_dict(),
                "last_dirty_rate_bps": status.get("dirtyRate"), "figures": figures,
                "agent_downtime_ms": status.get("downtime"), "postcopy": bool(status.get("postcopy")),
                "postcopy_downtime_ms": status.get("postcopyDowntime"),
                "throttle_max_pct": status.get("autoConvergeThrottleMax"),
                "measured_dirty_mib_s": rate, "touched_mib": touched, "parallel": parallel,
                "downtime_bound_ms": downtime_bound(params),
                "actions": [action_record(a) for a in status.get("scheduleActions") or []],
                "flags": outcome.flags, "params": {k: v for k, v in params.items() if k != "convergenceSchedule"},
                "schedule": params.get("convergenceSchedule"), "plan_explanation": plan.get("explanation"),
                "verified": bool(report.intact), "verify_reasons": list(report.reasons)}


def downtime_bound(params: dict) -> int | None:
    """The highest downtime a policy's VM.migrate allows: adaptive's maximum, else the largest
    setDowntime of the schedule the agent runs (Vdsm's legacy steps where none is sent)."""
    if params.get("adaptive"):
        return params["adaptive"]["maxDowntimeMs"]
    try:
        parsed, _ = MigrateParams.from_wire(dict(params))
    except InvalidInput:
        return None
    schedule = parsed.effective_schedule()
    values = [a.downtime_ms for a in (*schedule.init, *(s.action for s in schedule.stalling))
              if a.downtime_ms is not None]
    return max(values) if values else None
