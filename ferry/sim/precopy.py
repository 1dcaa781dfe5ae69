"""What a simulated migration does, pass by pass, and what libvirt would report of it (pure).

Why from the model: a simulated host must make a migration last as long as a real one would,
or the engine is measured against migrations that end at once. Each pre-copy pass is one step of
ferry.forecast.model.simulate run from where the migration stands (the data to send, the
downtime limit and bandwidth in force *now*), so the agent's real convergence schedule still
acts through migrateSetMaxDowntime / migrateStartPostCopy / abortJob as it does on libvirt;
the schedule is not replayed inside the model.

Job stats use libvirt's typed-parameter names and units (bytes, bytes/s, pages/s, ms), the keys
ferry.agent.progress and ferry.forecast.live read.
"""
from __future__ import annotations

from dataclasses import dataclass

from ferry.forecast.model import (
    CONVERGE,
    QEMU_DEFAULT_DOWNTIME_MS,
    THROTTLE_INCREMENT_PCT,
    THROTTLE_INITIAL_PCT,
    THROTTLE_MAX_PCT,
    THROTTLE_TRIGGER_COUNT,
    THROTTLE_TRIGGER_PCT,
    ForecastInputs,
    State,
    dirtied,
    simulate,
)

MIB = 1 << 20
PAGE = 4096
# libvirt's virDomainJobType values (checked against the binding in the unit tests)
JOB_NONE, JOB_UNBOUNDED, JOB_COMPLETED = 0, 2, 3
__all__ = ["QEMU_DEFAULT_DOWNTIME_MS", "Pass", "SimVm", "next_pass", "next_throttle"]


@dataclass(frozen=True)
class SimVm:
    """A simulated guest: its size, how much memory it touched, how fast it dirties it."""

    name: str
    uuid: str
    memory_mib: int
    vcpus: int = 2
    touched_mib: float = 0.0
    dirty_rate_mibs: float = 0.0
    dirty_pattern: str = "random"

    def to_wire(self) -> dict:
        return {"name": self.name, "uuid": self.uuid, "memory_mib": self.memory_mib, "vcpus": self.vcpus,
                "touched_mib": self.touched_mib, "dirty_rate_mibs": self.dirty_rate_mibs,
                "dirty_pattern": self.dirty_pattern}

    @classmethod
    def from_wire(cls, d: dict) -> SimVm:
        return cls(str(d["name"]), str(d["uuid"]), int(d["memory_mib"]), int(d.get("vcpus", 2)),
                   float(d.get("touched_mib", 0.0)), float(d.get("dirty_rate_mibs", 0.0)),
                   str(d.get("dirty_pattern", "random")))


@dataclass(frozen=True)
class Pass:
    """One pre-copy pass: `send_mib` in `seconds`, leaving `remaining_mib` dirty after it; when
    `converges`, QEMU stops the guest and sends the rest in `downtime_ms`."""

    iteration: int
    send_mib: float
    seconds: float
    remaining_mib: float
    converges: bool
    downtime_ms: float | None
    dirty_rate_mibs: float


def next_pass(vm: SimVm, *, iteration: int, send_mib: float | None, bandwidth_mibs: float,
              downtime_limit_ms: float, throttle_pct: int = 0) -> Pass:
    """The pass starting now, as the pre-copy model computes it (send_mib None: the first pass)."""
    inp = ForecastInputs(memory_mib=vm.memory_mib, touched_mib=min(vm.touched_mib, vm.memory_mib),
                         dirty_rate_mibs=vm.dirty_rate_mibs, bandwidth_mibs=bandwidth_mibs,
                         init_downtime_ms=int(max(1, downtime_limit_ms)), fixed_cost_s=0.0,
                         dirty_pattern=vm.dirty_pattern)
    run = simulate(inp, vm.dirty_rate_mibs, bandwidth_mibs,
                   State(iteration=iteration, send_mib=send_mib, downtime_ms=downtime_limit_ms,
                         throttle_pct=throttle_pct, pending=(), fire_now=False))
    step = run.steps[0]
    converges = run.outcome == CONVERGE and len(run.steps) == 1
    return Pass(iteration, step.send_mib, step.seconds, step.remaining_mib, converges,
                run.downtime_ms if converges else None, step.dirty_rate_mibs)


def next_throttle(throttle_pct: int, high_count: int, sent_mib: float, left_mib: float) -> tuple[int, int]:
    """QEMU's auto-converge after a pass (the model's rule): (throttle %, passes over the threshold)."""
    if left_mib <= sent_mib * THROTTLE_TRIGGER_PCT / 100:
        return throttle_pct, high_count
    high_count += 1
    if high_count < THROTTLE_TRIGGER_COUNT:
        return throttle_pct, high_count
    throttle = THROTTLE_INITIAL_PCT if throttle_pct == 0 else min(THROTTLE_MAX_PCT,
                                                                 throttle_pct + THROTTLE_INCREMENT_PCT)
    return throttle, 0


def remaining_during(vm: SimVm, p: Pass, elapsed_s: float) -> float:
    """MiB still to send `elapsed_s` into pass `p`: the unsent part of it plus what was dirtied
    meanwhile (at the pass's end, the model's remaining)."""
    if p.seconds <= 0:
        return p.remaining_mib
    f = min(1.0, max(0.0, elapsed_s / p.seconds))
    return p.send_mib * (1 - f) + dirtied(vm.touched_mib, p.dirty_rate_mibs * p.seconds * f, vm.dirty_pattern)


def running_job_stats(*, memory_mib: float, processed_mib: float, remaining_mib: float, bandwidth_mibs: float,
                      dirty_rate_mibs: float, iteration: int, elapsed_s: float,
                      expected_downtime_ms: float | None) -> dict:
    """virDomainGetJobStats of a running outgoing migration."""
    total = int(memory_mib * MIB)
    remaining = int(remaining_mib * MIB)
    processed = int(processed_mib * MIB)
    stats = {"type": JOB_UNBOUNDED, "operation": 5,  # VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT
             "time_elapsed": int(elapsed_s * 1000), "data_total": total, "data_processed": processed,
             "data_remaining": remaining, "memory_total": total, "memory_processed": processed,
             "memory_remaining": remaining, "memory_bps": int(bandwidth_mibs * MIB),
             "memory_dirty_rate": int(dirty_rate_mibs * MIB / PAGE), "memory_page_size": PAGE,
             "memory_iteration": iteration}
    if expected_downtime_ms is not None:
        stats["downtime"] = int(expected_downtime_ms)
    return stats


def completed_job_stats(*, memory_mib: float, processed_mib: float, downtime_ms: float, elapsed_s: float,
                        iteration: int, bandwidth_mibs: float) -> dict:
    """The JOB_COMPLETED event's stats of a migration that ended well."""
    total = int(memory_mib * MIB)
    return {"type": JOB_COMPLETED, "operation": 5, "time_elapsed": int(elapsed_s * 1000),
            "downtime": int(round(downtime_ms)), "data_total": total, "data_processed": int(processed_mib * MIB),
            "data_remaining": 0, "memory_total": total, "memory_processed": int(processed_mib * MIB),
            "memory_remaining": 0, "memory_bps": int(bandwidth_mibs * MIB), "memory_page_size": PAGE,
            "memory_iteration": iteration}
