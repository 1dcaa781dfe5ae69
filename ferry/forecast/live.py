"""The live re-forecast: from a running migration's job stats to an ETA {seconds, outcome}.

Why: a percentage of a saw-tooth is no ETA (Nova removed its progress timeout for that reason).
The same pre-copy model as before the start, run from where the migration stands now: what is
left of the current iteration, how long that pass has run already (the guest dirtied pages all
through it, and the next pass resends them: remaining after the current pass = dirtied during
it), the job's own throughput, the downtime limit in force and the schedule items not yet run.

The dirty rate: the one measured before the migration started (VM.getDirtyRate, kept on the
migration's plan as `measured`) when there is one. QEMU reports none during the first pass (it
computes one at each bitmap sync), which is where a migration is at 50% progress, and its
figure afterwards counts distinct pages per sync (already saturated, and reported at 2-3x the
idle figure), where the model saturates the writes itself. Without a pre-migration figure the
job's own is used. Recomputed at every stats poll.
"""
from __future__ import annotations

from dataclasses import dataclass

from ferry.forecast.model import (
    ABORT,
    FIXED_AFTER_FRACTION,
    FIXED_COST_S,
    ForecastInputs,
    ScheduleItem,
    State,
    simulate,
)

__all__ = ["FIXED_AFTER_FRACTION", "Eta", "LiveStats", "PreMigration", "from_job_stats", "live_eta",
           "sustained_throughput"]


@dataclass(frozen=True)
class LiveStats:
    """One poll of a running migration (MiB, MiB/s, s, ms); iteration counts from the first seen."""

    remaining_mib: float
    dirty_rate_mibs: float
    throughput_mibs: float
    iteration: int
    elapsed_s: float
    downtime_ms: float
    pass_elapsed_s: float = 0.0     # how long the current pass has run (0: unknown)
    processed_mib: float | None = None   # bytes sent so far (zero pages cost next to nothing)


@dataclass(frozen=True)
class PreMigration:
    """What was measured before the migration started (MiB, MiB/s): the forecast's figures."""

    dirty_rate_mibs: float
    touched_mib: float | None = None
    dirty_pattern: str = "linear"


MIB = 1 << 20


def from_job_stats(stats: dict, *, baseline_iteration: int, downtime_limit_ms: float) -> LiveStats:
    """libvirt's jobStats() keys (bytes, bytes/s, pages/s, ms) -> LiveStats in the model's units.

    The iteration counts from the first one the agent saw (as the schedule does); the downtime
    limit in force is the caller's (the job's own `downtime` is QEMU's expected downtime).
    """
    def g(key: str) -> float:
        value = stats.get(key, 0)
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0

    remaining = g("data_remaining") if g("data_total") else g("memory_remaining")
    page = g("memory_page_size") or 4096
    return LiveStats(remaining_mib=remaining / MIB, dirty_rate_mibs=g("memory_dirty_rate") * page / MIB,
                     throughput_mibs=g("memory_bps") / MIB,
                     iteration=max(0, int(g("memory_iteration")) - baseline_iteration),
                     elapsed_s=g("time_elapsed") / 1000, downtime_ms=downtime_limit_ms)


@dataclass(frozen=True)
class Eta:
    seconds: float | None       # from now; None = never ends
    outcome: str
    reason: str

    def to_wire(self) -> dict:
        return {"seconds": None if self.seconds is None else round(self.seconds, 1), "outcome": self.outcome}


def sustained_throughput(stats: LiveStats) -> float:
    """The bandwidth to run the rest at (MiB/s): the job's figure, or its average so far if higher.

    QEMU's figure is the last bandwidth window's (about a second): on a busy host one window
    can read a fraction of what the migration keeps up (15 MiB/s at a 100 MiB/s cap in the lab,
    which made a 234 s ETA of 9 s). What it has sent over its whole time is what it sustains;
    that average includes the setup and reads low, so it only ever raises the figure."""
    average = 0.0
    if stats.processed_mib is not None and stats.elapsed_s > 0:
        average = max(0.0, stats.processed_mib) / stats.elapsed_s
    return max(stats.throughput_mibs, average)


def live_eta(stats: LiveStats, *, touched_mib: float, memory_mib: float,
             pending: tuple[ScheduleItem, ...] = (), auto_converge: bool = False, throttle_pct: int = 0,
             postcopy_allowed: bool = True, fixed_cost_s: float = FIXED_COST_S,
             max_seconds: float | None = None, dirty_pattern: str = "linear",
             check_chunk_s: float | None = None, switchover_syncs: int = 0,
             final_bandwidth_mibs: float | None = None, premigration: PreMigration | None = None) -> Eta:
    """ETA from the live stats; `pending` are the stalling items the agent has not run yet.

    The current iteration's schedule item (if any) has run already, so nothing fires until the
    next iteration. A throughput of 0 (the job just started) gives no ETA: ValueError. The rest
    runs at `sustained_throughput`; after QEMU's end, half the fixed cost (libvirt's confirm),
    none for an abort.

    With `premigration`: its dirty rate, touched memory (the working set the writes fall in)
    and pattern; in the first pass what is left to send is the touched memory not sent yet
    (touched - processed, at most the remaining), since the pages never touched are zero pages,
    sent as a flag, and QEMU's "remaining" counts them in full (they lie together, mostly at
    the top of RAM, so scaling remaining by touched/memory overstated it by 60% in the lab).
    """
    if stats.throughput_mibs <= 0:
        raise ValueError("no throughput measured yet: no ETA")
    send = max(0.0, stats.remaining_mib)
    rate = max(0.0, stats.dirty_rate_mibs)
    touched = max(touched_mib, min(memory_mib, stats.remaining_mib))
    if premigration is not None:
        rate, dirty_pattern = max(0.0, premigration.dirty_rate_mibs), premigration.dirty_pattern
        if premigration.touched_mib is not None:
            touched = min(memory_mib, max(0.0, premigration.touched_mib))
            if stats.iteration == 0:
                sent = stats.processed_mib
                send = min(send, max(0.0, touched - sent)) if sent is not None else send * touched / memory_mib
    budget = None if max_seconds is None else max(0.001, max_seconds - stats.elapsed_s)
    bandwidth = sustained_throughput(stats)
    inp = ForecastInputs(memory_mib=memory_mib, touched_mib=touched, dirty_rate_mibs=rate,
                         bandwidth_mibs=bandwidth, bandwidth_source="live", stalling=tuple(pending),
                         auto_converge=auto_converge, postcopy_allowed=postcopy_allowed,
                         fixed_cost_s=fixed_cost_s, max_seconds=budget, dirty_pattern=dirty_pattern,
                         check_chunk_s=check_chunk_s, switchover_syncs=switchover_syncs,
                         final_bandwidth_mibs=final_bandwidth_mibs)
    state = State(iteration=stats.iteration, send_mib=send, downtime_ms=stats.downtime_ms,
                  throttle_pct=throttle_pct, fire_now=False, pass_elapsed_s=max(0.0, stats.pass_elapsed_s))
    run = simulate(inp, inp.dirty_rate_mibs, inp.bandwidth_mibs, state)
    # libvirt's confirm after QEMU's end; an abort is a cancel, with no confirm to wait for
    after = 0.0 if run.outcome == ABORT else fixed_cost_s * FIXED_AFTER_FRACTION
    seconds = None if run.seconds is None else run.seconds + after
    return Eta(seconds, run.outcome, run.reason)
