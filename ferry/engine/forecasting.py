"""From a migration plan and what was measured to the forecast model's inputs (issue 14 item 3).

Why a module of its own: the plan says how the migration will run (schedule, bandwidth cap,
parallel connections, auto-converge), the measurements say what it moves (memory, touched
memory, dirty rate from VM.getDirtyRate, the throughput earlier migrations between the same
two hosts reached); `ferry.forecast` knows neither the planner nor the agent's answers. This
is the one place the two meet. Pure: plain values in, `ForecastInputs` out, no I/O, so
`ferry plan VM --forecast`, a scenario file and the benchmark build the same inputs.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ferry.common.errors import InvalidInput
from ferry.engine.planner import MigrationPlan
from ferry.forecast import bandwidth as bw
from ferry.forecast import bias
from ferry.forecast.model import (
    DEFAULT_BANDWIDTH_SPREAD,
    FIXED_COST_S,
    IN_PASS_CHUNK_CAPPED_S,
    IN_PASS_CHUNK_FREE_S,
    LINEAR,
    RANDOM,
    SET_DOWNTIME,
    SWITCHOVER_SYNCS,
    Forecast,
    ForecastInputs,
    ScheduleItem,
    forecast,
)
from ferry.protocol.adaptive import DEFAULT_MAX_SECONDS_PER_GIB
from ferry.protocol.migrate_params import DEFAULT_MAX_BANDWIDTH_MIBS, MigrateParams
from ferry.protocol.schedule import Schedule

__all__ = ["LINEAR", "RANDOM", "Measured", "calibration", "forecast_inputs", "forecast_wire", "link_mibs",
           "measured_from_dirty_rate", "pair_samples", "throughput_sample", "premigration_record",
           "fresh_premigration", "plan_forecast", "schedule_items", "time_limit_s"]

MBPS_TO_MIBS = 1_000_000 / 8 / (1 << 20)     # a link's Mbit/s in MiB/s
# A sample whose cap was within this factor of its throughput ran at the cap, not at what
# the hosts reach: it says nothing of the pair and is left out of the calibration.
CAP_BOUND_FACTOR = 1.25


@dataclass(frozen=True)
class Measured:
    """What is known of the VM and the host pair (MiB, MiB/s); None = not measured."""

    memory_mib: float
    touched_mib: float | None = None          # None: all of memory is taken as touched
    dirty_rate_mibs: float = 0.0              # the corrected estimate (ferry.forecast.bias)
    dirty_rate_low_mibs: float | None = None
    dirty_rate_high_mibs: float | None = None
    dirty_reason: str = ""
    measured_bandwidth_mibs: float | None = None   # calibrated from earlier migrations
    bandwidth_spread: float | None = None
    bandwidth_samples: int = 0
    link_mibs: float | None = None
    dirty_pattern: str = LINEAR
    fixed_cost_s: float = FIXED_COST_S
    # a parallel plan without samples of its own connection count: the pair's one-connection
    # calibrated speed, for the final copy only (the rate limit lifted, multifd goes at least
    # as fast as one stream); never the passes' bandwidth
    final_floor_mibs: float | None = None


def schedule_items(schedule: Schedule) -> tuple[float | None, tuple[ScheduleItem, ...]]:
    """A protocol schedule -> (the downtime the init list leaves in force, the model's items).

    The agent runs every init action at start, so the last setDowntime of `init` is the limit
    of iteration 0; stalling items become (limit, action, ms or None), the policy's last
    items keeping their limit -1."""
    init_ms = None
    for action in schedule.init:
        if action.name == SET_DOWNTIME and action.downtime_ms is not None:
            init_ms = float(action.downtime_ms)
    items = tuple((s.limit, str(s.action.name),
                   s.action.downtime_ms if s.action.name == SET_DOWNTIME else None)
                  for s in schedule.stalling)
    return init_ms, items


def time_limit_s(params: MigrateParams, memory_mib: float) -> float | None:
    """The seconds after which the source agent aborts, whatever QEMU does (None: no limit).

    The agent applies Vdsm's migration_max_time_per_gib_mem (64 s/GiB, rounded up to whole
    seconds as Vdsm does) to a migration sent without a convergence schedule (Legacy), and a
    `maxTimePerGiB` given in the call to any migration (0 turns it off): ferry.agent.hard_limits.
    The lab's Legacy run of a 512 MiB guest at 30 MiB/s was aborted so at 32 s; the model had
    it converge at 32.0 s."""
    per_gib = params.max_time_per_gib
    if per_gib is None:
        per_gib = DEFAULT_MAX_SECONDS_PER_GIB if params.schedule is None else 0
    if per_gib <= 0:
        return None
    return float((per_gib * int(memory_mib) + 1023) // 1024)


def link_mibs(*speeds_mbps: int | None) -> float | None:
    """The slower of the hosts' link speeds (Mbit/s) in MiB/s; None when any is unknown."""
    known = [s for s in speeds_mbps if isinstance(s, int) and not isinstance(s, bool) and s > 0]
    if not known or len(known) != len(speeds_mbps):
        return None
    return min(known) * MBPS_TO_MIBS


def forecast_inputs(plan: MigrationPlan, m: Measured) -> ForecastInputs:
    """The model's inputs for migrating under `plan` what `m` describes.

    Bandwidth: the lowest of the plan's cap (maxBandwidth; 0 = none; not sent = the agent's
    default 52 MiB/s), the calibrated figure and the link (ferry.forecast.bandwidth). With no
    figure at all there is nothing to forecast with: InvalidInput naming `bandwidth`."""
    params = plan.params
    cap = params.bandwidth_mibs or None
    chosen = bw.choose_bandwidth(cap, m.link_mibs, m.measured_bandwidth_mibs)
    if chosen is None:
        raise InvalidInput("bandwidth", "no bandwidth to forecast with: the plan sets no cap (maxBandwidth 0), "
                                        "no earlier migration between these hosts was measured and their link "
                                        "speeds are unknown")
    init_ms, items = schedule_items(params.effective_schedule())
    touched = m.memory_mib if m.touched_mib is None else min(m.touched_mib, m.memory_mib)
    # the final copy runs with the rate limit lifted: at what the pair reaches, when known
    free = [x for x in (m.measured_bandwidth_mibs or m.final_floor_mibs, m.link_mibs) if x]
    final = min(free) if free else None
    spread = m.bandwidth_spread if chosen.source == bw.MEASURED and m.bandwidth_spread is not None else None
    return ForecastInputs(
        memory_mib=m.memory_mib, touched_mib=touched, dirty_rate_mibs=m.dirty_rate_mibs,
        dirty_rate_low_mibs=m.dirty_rate_low_mibs, dirty_rate_high_mibs=m.dirty_rate_high_mibs,
        bandwidth_mibs=chosen.mibs, bandwidth_source=chosen.source,
        bandwidth_spread=DEFAULT_BANDWIDTH_SPREAD if spread is None else spread,
        parallel=params.parallel or 0, init_downtime_ms=init_ms, stalling=items,
        auto_converge=params.auto_converge,
        # QEMU 10.0 refuses post-copy with multifd; the planner drops it then, this says why too
        postcopy_allowed=not params.parallel, fixed_cost_s=m.fixed_cost_s, dirty_pattern=m.dirty_pattern,
        check_chunk_s=check_chunk(chosen.source), switchover_syncs=SWITCHOVER_SYNCS,
        final_bandwidth_mibs=final if final is not None and final > chosen.mibs else None,
        max_seconds=time_limit_s(params, m.memory_mib), link_mibs=m.link_mibs,
    )


def check_chunk(bandwidth_source: str) -> float:
    """Seconds of data between QEMU's convergence checks: one rate-limit window at a cap."""
    return IN_PASS_CHUNK_CAPPED_S if bandwidth_source == bw.CAP else IN_PASS_CHUNK_FREE_S


def plan_forecast(plan: MigrationPlan, m: Measured) -> Forecast:
    return forecast(forecast_inputs(plan, m))


def forecast_wire(fc: Forecast, m: Measured) -> dict[str, Any]:
    """Issue 14's `forecast` object, with the reason and where the figures came from."""
    wire = fc.to_wire()
    wire["reason"] = fc.reason
    wire["inputs"]["dirtyRateReason"] = m.dirty_reason
    wire["inputs"]["bandwidthSamples"] = m.bandwidth_samples
    return wire


def measured_from_dirty_rate(answer: Mapping[str, Any], *, memory_mib: float, **rest) -> Measured:
    """VM.getDirtyRate's answer (docs/forecast.md) -> Measured, bias-corrected.

    The agent corrects the reading itself (`estimate`); an answer without it (an older agent)
    is corrected here from its mode and window."""
    est = answer.get("estimate")
    if not isinstance(est, Mapping):
        rate = _number(answer.get("dirtyRateMiBs"), "dirtyRateMiBs")
        c = bias.correct(rate, str(answer.get("mode") or bias.PAGE_SAMPLING),
                         _number(answer.get("seconds"), "seconds"))
        est = {"estimateMiBs": c.estimate, "lowMiBs": c.low, "highMiBs": c.high, "reason": c.reason}
    touched = answer.get("touchedMiB")
    touched = None if touched is None else _number(touched, "touchedMiB")
    memory = answer.get("memoryMiB")
    memory = memory_mib if memory is None else _number(memory, "memoryMiB")
    return Measured(memory_mib=memory, touched_mib=touched,
                    dirty_rate_mibs=_number(est.get("estimateMiBs"), "estimate.estimateMiBs"),
                    dirty_rate_low_mibs=_number(est.get("lowMiBs"), "estimate.lowMiBs"),
                    dirty_rate_high_mibs=_number(est.get("highMiBs"), "estimate.highMiBs"),
                    dirty_reason=str(est.get("reason") or ""), **rest)


def _number(value, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value or value < 0:
        raise InvalidInput(field, f"must be a number >= 0, got {value!r}")
    return float(value)


def throughput_sample(plan: Mapping[str, Any] | None, result: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What a succeeded migration says of its host pair, for the pair_throughput table:
    {connections, cap_mibs, mibs}; None when it measured no throughput, or its final figures
    do not cover the whole migration (`figures_complete` false: ferry.engine.migration_outcome).
    The speed is QEMU's own transfer rate (setup excluded) when the result has it, else bytes
    over QEMU's whole time."""
    result = result or {}
    if result.get("figures_complete") is False:
        return None
    mibs = result.get("transfer_mibps") or result.get("throughput_mibps")
    if not isinstance(mibs, int | float) or isinstance(mibs, bool) or mibs <= 0:
        return None
    params = (plan or {}).get("params") or {}
    cap = params.get("maxBandwidth", DEFAULT_MAX_BANDWIDTH_MIBS)
    connections = result.get("parallel_connections") or params.get("parallel") or 0
    return {"connections": int(connections) if isinstance(connections, int) else 0,
            "cap_mibs": cap if isinstance(cap, int) and not isinstance(cap, bool) and cap > 0 else None,
            "mibs": float(mibs)}


def pair_samples(rows: Iterable[Mapping[str, Any]], *, parallel: int | None) -> list[float]:
    """Throughputs (MiB/s) of one host pair's earlier migrations that say what the pair reaches.

    `rows` are the pair's pair_throughput rows in this direction (ThroughputRepository.list).
    Kept: the same connection count (plain and parallel migrations reach different speeds),
    and not bound by their own cap (a migration capped at 40 MiB/s that ran at 40 says nothing
    of the hosts)."""
    samples = []
    for row in rows:
        if (row.get("connections") or None) != (parallel or None):
            continue
        mibs = row.get("mibs")
        if not isinstance(mibs, int | float) or isinstance(mibs, bool) or mibs <= 0:
            continue
        cap = row.get("capMiBs")
        if isinstance(cap, int) and cap > 0 and cap <= mibs * CAP_BOUND_FACTOR:
            continue
        samples.append(float(mibs))
    return samples


# a pre-migration measurement older than this says too little of the guest now to steer its ETA
MEASURED_MAX_AGE_S = 900


def premigration_record(m: Measured, at: float) -> dict[str, Any]:
    """A forecast's measurement as kept on the VM (and then on a migration's plan)."""
    return {"dirtyRateMiBs": m.dirty_rate_mibs, "touchedMiB": m.touched_mib, "memoryMiB": m.memory_mib,
            "dirtyPattern": m.dirty_pattern, "at": at}


def fresh_premigration(kept: Mapping[str, Any] | None, now: float,
                       max_age_s: float = MEASURED_MAX_AGE_S) -> dict[str, Any] | None:
    """The VM's kept measurement if it was taken within max_age_s before now, else None."""
    if not isinstance(kept, Mapping):
        return None
    at = kept.get("at")
    if not isinstance(at, int | float) or isinstance(at, bool) or not 0 <= now - at <= max_age_s:
        return None
    return dict(kept)


def calibration(samples: list[float]) -> tuple[float | None, float | None]:
    """(calibrated MiB/s, relative spread) of a pair's samples (ferry.forecast.bandwidth)."""
    return bw.calibrate(samples), bw.spread(samples)
