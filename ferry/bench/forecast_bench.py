"""`ferry bench forecast`: does the migration forecast say what then happens? (issue 14 item 5)

Each run boots (or reuses) a lab guest of a size, a touched fraction and a dirty rate, sets the
engine's cluster to the run's policy, cap and mode, asks the engine for the plan with its
forecast (`POST /api/vms/{vm}/plan?forecast=true`: the source agent measures the dirty rate
with VM.getDirtyRate, the engine forecasts), migrates through the engine, follows it (noting
the live ETA when progress first reaches 50%), verifies the guest's memory and compares.

The model is never fitted to these runs: the forecast is made before the run's migration, from
the measurement and the plan; the engine's per-host-pair calibration uses only migrations not
bound by their own cap, and every run here is capped (`bandwidthSource` is recorded per run).

The default matrix is issue 14's full one (sizes 512-8192 MiB, touched 20-95%, dirty rates
0-1.2x the cap, caps 30-1000 MiB/s, plain/parallel/zero-copy, four policies): thousands of
migrations. `--case` runs chosen cases instead.
"""
from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from ferry.bench.machine import machine_facts
from ferry.client.follow import wait_for
from ferry.common.errors import InvalidInput, NotFound
from ferry.engine.migration_eta import migration_eta
from ferry.engine.policies import find_policy

Progress = Callable[[str], None]
SIZES = (512, 1024, 2048, 4096, 8192)
TOUCHED_PCT = (20, 50, 80, 95)
DIRTY_FRACTIONS = (0.0, 0.5, 0.9, 1.2)          # of the cap: from idle to above the bandwidth
CAPS = (30, 100, 300, 1000)
MODES = ("plain", "parallel4", "zerocopy4")
POLICIES = ("Minimal downtime", "Suspend workload if needed", "Very large VMs", "Legacy")
MIN_FILL_MIB = 16
OUTCOMES = ("converge", "abort", "postcopy")


@dataclass(frozen=True)
class Case:
    size_mib: int
    touched_pct: int
    dirty_mib_s: int
    cap_mib_s: int
    mode: str
    policy: str

    @property
    def fill_mib(self) -> int:
        return max(MIN_FILL_MIB, self.size_mib * self.touched_pct // 100)

    @property
    def guest_key(self) -> tuple[int, int, int]:
        return self.size_mib, self.fill_mib, self.dirty_mib_s

    @property
    def parallel(self) -> int | None:
        for prefix in ("parallel", "zerocopy"):
            if self.mode.startswith(prefix):
                return int(self.mode[len(prefix):] or 4)
        return None

    def label(self) -> str:
        return (f"{self.size_mib} MiB {self.touched_pct}% dirty {self.dirty_mib_s} cap {self.cap_mib_s} "
                f"{self.mode} {self.policy}")


def _check(case: Case) -> Case:
    if case.mode != "plain" and case.parallel is None:
        raise InvalidInput("mode", f"must be plain, parallelN or zerocopyN, got {case.mode!r}")
    if case.parallel is not None and not 1 <= case.parallel <= 16:
        raise InvalidInput("mode", f"connections must be 1..16, got {case.mode!r}")
    if not 1 <= case.touched_pct <= 100:
        raise InvalidInput("touched", f"must be 1..100 %, got {case.touched_pct}")
    if case.dirty_mib_s * 2 > case.fill_mib:
        raise InvalidInput("dirty", f"{case.dirty_mib_s} MiB/s is more than half the {case.fill_mib} MiB filled")
    try:
        find_policy(case.policy, field="policy")
    except NotFound:
        raise InvalidInput("policy", f"unknown policy {case.policy!r}") from None
    return case


def full_matrix(sizes=SIZES, touched=TOUCHED_PCT, fractions=DIRTY_FRACTIONS, caps=CAPS, modes=MODES,
                policies=POLICIES) -> list[Case]:
    """Issue 14's matrix; a dirty rate the guest's fill cannot carry (more than half of it per
    second) is left out. Grouped by guest, so one boot serves every run of it."""
    cases = []
    for size, pct, frac, cap, mode, policy in itertools.product(sizes, touched, fractions, caps, modes, policies):
        case = Case(size, pct, round(frac * cap), cap, mode, policy)
        if case.dirty_mib_s * 2 <= case.fill_mib:
            cases.append(_check(case))
    return sorted(cases, key=lambda c: c.guest_key)


def parse_case(text: str) -> Case:
    """'SIZE:TOUCHED%:DIRTY:CAP:MODE:POLICY', e.g. '512:60:32:40:plain:Minimal downtime'."""
    parts = text.split(":", 5)
    if len(parts) != 6:
        raise InvalidInput("case", f"must be SIZE:TOUCHED:DIRTY:CAP:MODE:POLICY, got {text!r}")
    try:
        size, pct, dirty, cap = (int(p) for p in parts[:4])
    except ValueError:
        raise InvalidInput("case", f"size, touched, dirty and cap must be integers, got {text!r}") from None
    return _check(Case(size, pct, dirty, cap, parts[4].strip(), parts[5].strip()))


def actual_outcome(record: dict) -> str:
    """The engine's final record -> converge / abort / postcopy / failed."""
    state = record.get("state")
    if state == "ABORTED":
        return "abort"
    if state != "SUCCEEDED":
        return "failed"
    actions = (record.get("result") or {}).get("schedule_actions") or []
    return "postcopy" if any(a.get("action") == "postcopy" and a.get("ok", True) for a in actions) else "converge"


def cluster_for(case: Case) -> dict:
    """Engine cluster settings that plan `case`: its policy, connections, and a CUSTOM bandwidth
    that the policy's maxMigrations divides down to the cap."""
    policy = find_policy(case.policy)
    parallel = {"mode": "CUSTOM", "connections": case.parallel} if case.parallel else {"mode": "DISABLED"}
    return {"policy": policy.name, "parallel": parallel,
            "bandwidth": {"mode": "CUSTOM", "custom_mbps": case.cap_mib_s * 8 * policy.max_migrations},
            "encrypted": False, "auto_converge": False, "compressed": False}


CALIBRATION_MBPS = 80_000      # far above what the lab's loopback migrations reach: uncapped


class ForecastBench:
    def __init__(self, lab, driver, cases: list[Case], *, progress: Progress, dirty_seconds: int = 2,
                 pattern: str = "random", calibrate: bool = False,
                 checkpoint: Callable[[dict], None] | None = None):
        self.lab, self.driver, self.cases = lab, driver, cases
        self.checkpoint = checkpoint   # given the result so far after each run (a run cut short keeps it)
        self.client = driver.client
        self.progress = progress
        self.dirty_seconds, self.pattern = dirty_seconds, pattern
        self.calibrate = calibrate

    def _calibration(self, h1, h2) -> list[dict]:
        """Uncapped migrations of an idle guest, each way, before the cases and not compared:
        the engine keeps their throughput, the per-pair figure its forecasts calibrate from."""
        vm = "bench-fc-calibration"
        self.lab.destroy_guest(vm)
        guest = self.lab.boot_guest(h1, vm, memory_mib=512, fill_mib=256, dirty_mib_s=0)
        self.driver.adopt(guest, h1)
        self.client.patch("/api/clusters/bench", {"policy": "Legacy", "parallel": {"mode": "DISABLED"},
                                                  "bandwidth": {"mode": "CUSTOM", "custom_mbps": CALIBRATION_MBPS}})
        done = []
        try:
            for src, dst in ((h1, h2), (h2, h1)):
                for h in (src, dst):
                    self.client.post(f"/api/hosts/{h.name}/refresh", {})
                rec = wait_for(self.client, self.client.post(f"/api/vms/{vm}/migrate", {"to": dst.name}), timeout=300)
                mibs = (rec.get("result") or {}).get("throughput_mibps")
                done.append({"source": src.name, "destination": dst.name, "state": rec["state"], "mibs": mibs})
                self.progress(f"calibration {src.name} -> {dst.name}: {rec['state']}, {mibs} MiB/s")
        finally:
            # the VM's record stays: deleting it would delete its migrations (ON DELETE CASCADE),
            # and with them the history the engine calibrates from
            self.lab.destroy_guest(vm)
        return done

    def run(self) -> dict:
        h1, h2 = self.lab.hosts()[:2]
        started = datetime.now(UTC)
        self.machine = machine_facts(self.lab)    # the load before the first run, not after the last
        runs: list[dict] = []
        calibration = self._calibration(h1, h2) if self.calibrate else []
        for key, group in itertools.groupby(self.cases, key=lambda c: c.guest_key):
            size, fill, dirty = key
            vm = f"bench-fc-{size}-{fill}-{dirty}"
            self.lab.destroy_guest(vm)
            self.progress(f"booting {vm}: {size} MiB, filling {fill} MiB, dirtying {dirty} MiB/s")
            vcpus = max([c.parallel or 1 for c in self.cases])   # the planner allows max(2, vCPUs) connections
            guest = self.lab.boot_guest(h1, vm, memory_mib=size, fill_mib=fill, dirty_mib_s=dirty, vcpus=vcpus,
                                        timeout=120 + 30 * size / 1024)
            self.driver.adopt(guest, h1)
            here = h1
            try:
                for case in group:
                    there = h2 if here == h1 else h1
                    rec = self._one(case, vm, here, there)
                    runs.append(rec)
                    self.progress(f"[{len(runs)}/{len(self.cases)}] {case.label()}: {_line(rec)}")
                    if self.checkpoint is not None:
                        self.checkpoint(self._result(started, calibration, runs))
                    if rec["actual"]["state"] == "SUCCEEDED":
                        here = there
            finally:
                self.lab.destroy_guest(vm)
                self.driver.release(vm)
        return self._result(started, calibration, runs)

    def _result(self, started: datetime, calibration: list[dict], runs: list[dict]) -> dict:
        return {"kind": "forecast", "started_at": started.isoformat(), "ended_at": datetime.now(UTC).isoformat(),
                "dirty_seconds": self.dirty_seconds, "pattern": self.pattern, "cases": len(self.cases),
                "calibration": calibration,
                "machine": self.machine, "load_avg_at_end": [round(x, 2) for x in os.getloadavg()],
                "runs": list(runs)}

    def _one(self, case: Case, vm: str, src, dst) -> dict:
        self.client.patch("/api/clusters/bench", cluster_for(case))
        for h in (src, dst):
            self.client.post(f"/api/hosts/{h.name}/refresh", {})
        planned = self.client.post(f"/api/vms/{vm}/plan?forecast=true&dirtySeconds={self.dirty_seconds}"
                                   f"&dirtyPattern={self.pattern}", {"to": dst.name})
        fc = planned["forecast"]
        t0 = time.monotonic()
        record = self.client.post(f"/api/vms/{vm}/migrate", {"to": dst.name})
        half: dict = {}
        trace: list[dict] = []

        def seen(m: dict) -> None:
            eta = migration_eta(m)
            now = time.monotonic() - t0
            if eta is not None:
                trace.append({"at_s": round(now, 3), "progress": m.get("progress"), "eta_s": eta.seconds,
                              "outcome": eta.outcome, "iteration": (m.get("figures") or {}).get("iteration")})
            if not half and (m.get("progress") or 0) >= 50 and eta is not None:
                before = previous_eta(m)
                half.update({"at_s": now, "eta_s": eta.seconds, "outcome": eta.outcome,
                             "before_eta_s": None if before is None else before.seconds,
                             "premigration": bool((m.get("plan") or {}).get("measured")),
                             "figures": m.get("figures")})

        final = wait_for(self.client, record, on_update=seen, timeout=900)
        wall = time.monotonic() - t0
        for point in trace:
            point["actual_left_s"] = round(wall - point["at_s"], 3)
        result = final.get("result") or {}
        report = self.lab.verify(vm, dst if final["state"] == "SUCCEEDED" else src)
        if half.get("eta_s") is not None:
            half["actual_left_s"] = wall - half["at_s"]
        return {"case": asdict(case), "source": src.name, "destination": dst.name, "at": time.time(),
                "forecast": {k: fc.get(k) for k in ("outcome", "totalSeconds", "downtimeMs", "downtimeRangeMs",
                                                    "iterations", "range", "reason")},
                "inputs": fc.get("inputs"), "steps": fc.get("steps"),
                "actual": {"state": final["state"], "outcome": actual_outcome(final), "wall_s": round(wall, 3),
                           "downtime_ms": result.get("downtime_ms"), "iterations": result.get("iterations"),
                           "duration_ms": result.get("duration_ms"), "error": final.get("error"),
                           "schedule_actions": result.get("schedule_actions")},
                "live_eta_at_50": half or None, "eta_trace": trace, "verified": bool(report.intact),
                "verify_reasons": list(report.reasons)}


def previous_eta(record: dict):
    """The ETA as the engine computed it before the pre-migration rate and the pass time were
    used (no `measured` on the plan, no time carried from the current pass): the before figure
    on the same sample."""
    plan = {k: v for k, v in (record.get("plan") or {}).items() if k != "measured"}
    f = dict(record.get("figures") or {})
    if "time_elapsed_ms" in f:
        f["pass_started_ms"] = f["time_elapsed_ms"]
    return migration_eta({**record, "plan": plan, "figures": f})


def _line(rec: dict) -> str:
    f, a = rec["forecast"], rec["actual"]
    total = "never" if f["totalSeconds"] is None else f"{f['totalSeconds']:.1f} s"
    return (f"forecast {f['outcome']} {total} ({f['iterations']} it, downtime {f['downtimeMs']}); "
            f"actual {a['outcome']} {a['wall_s']:.1f} s ({a['iterations']} it, downtime {a['downtime_ms']}); "
            f"memory {'verified' if rec['verified'] else 'NOT intact'}")
