"""A running migration's ETA from its record: the last status sample + the plan -> {seconds, outcome}.

Why from the record: the orchestrator stores each VM.getMigrationStatus sample's figures as it
follows the agent (at least once a second), so the ETA is recomputed whenever the record is
read, from the freshest figures, with no extra state. Pure: a record's dict in, the same dict
with `eta` out (ferry.forecast.live does the modelling).

The schedule items not yet run are replayed from the plan the way the agent's ScheduleRunner
runs them (one per new iteration, head item when its limit < n), with QEMU's first reported
iteration (1, the setup's bitmap sync) as the baseline. The throttle auto-converge has reached
is not in the figures: the ETA takes it as 0 (so it errs late for a throttled guest).

The dirty rate and touched memory measured before the migration (the plan's `measured`, kept
when the VM was forecast shortly before: ferry.engine.services.migrations) are the model's
inputs when present; how long the current pass has run comes from the figures' time elapsed
and `pass_started_ms` (the orchestrator notes when the iteration changed).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ferry.common.errors import InvalidInput
from ferry.engine.forecasting import check_chunk, schedule_items, time_limit_s
from ferry.forecast.live import Eta, LiveStats, PreMigration, live_eta
from ferry.forecast.model import SWITCHOVER_SYNCS
from ferry.protocol.migrate_params import MigrateParams

MIB = 1 << 20
FIRST_ITERATION = 1          # QEMU's dirty-sync count once the setup's sync is done
RUNNING_STATES = ("RUNNING",)


def _num(figures: Mapping[str, Any], key: str) -> float | None:
    v = figures.get(key)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def pending_items(items: tuple, n: int) -> tuple:
    """The stalling items still to run after iteration n (the agent's rule, replayed)."""
    pending = list(items)
    for i in range(1, n + 1):
        if pending and pending[0][0] < i:
            pending.pop(0)
    return tuple(pending)


def limit_in_force(init_ms: float | None, items: tuple, n: int) -> float | None:
    """The downtime limit the schedule has set by iteration n (None: QEMU's default)."""
    limit = init_ms
    done = len(items) - len(pending_items(items, n))
    for _lim, action, value in items[:done]:
        if action == "setDowntime":
            limit = float(value)
    return limit


def premigration(plan: Mapping[str, Any] | None) -> PreMigration | None:
    """The plan's `measured` ({dirtyRateMiBs, touchedMiB, dirtyPattern}) -> PreMigration, or
    None when there is none or it is unreadable (then the job's own figures serve)."""
    m = (plan or {}).get("measured")
    if not isinstance(m, Mapping):
        return None
    rate, touched = _num(m, "dirtyRateMiBs"), _num(m, "touchedMiB")
    pattern = m.get("dirtyPattern", "linear")
    if rate is None or rate < 0 or pattern not in ("linear", "random") or (touched is not None and touched < 0):
        return None
    return PreMigration(dirty_rate_mibs=rate, touched_mib=touched, dirty_pattern=pattern)


def pass_elapsed_s(figures: Mapping[str, Any], n: int) -> float:
    """How long the current pass has run: since `pass_started_ms`, or since the job started
    in the first pass; 0 when not known."""
    elapsed = _num(figures, "time_elapsed_ms")
    if elapsed is None:
        return 0.0
    start = _num(figures, "pass_started_ms")
    if start is None:
        start = 0.0 if n == 0 else elapsed
    return max(0.0, (elapsed - start) / 1000)


def migration_eta(record: Mapping[str, Any]) -> Eta | None:
    """The ETA of a RUNNING pre-copy migration, or None (not running, no throughput yet,
    post-copy under way, or a plan it cannot read)."""
    if record.get("state") not in RUNNING_STATES:
        return None
    f = record.get("figures") or {}
    if f.get("postcopy") or f.get("agent_state") not in (None, "running"):
        return None
    bps, remaining = _num(f, "bandwidth_bps"), _num(f, "data_remaining")
    if remaining is None:
        remaining = _num(f, "memory_remaining")
    total = _num(f, "memory_total") or _num(f, "data_total")
    if not bps or remaining is None or not total:
        return None
    try:
        params, _unknown = MigrateParams.from_wire((record.get("plan") or {}).get("params") or {})
    except InvalidInput:
        return None
    processed = _num(f, "data_processed")
    if processed is None:
        processed = _num(f, "memory_processed")
    init_ms, items = schedule_items(params.effective_schedule())
    n = max(0, int(_num(f, "iteration") or FIRST_ITERATION) - FIRST_ITERATION)
    limit = _num(f, "max_downtime_ms") or limit_in_force(init_ms, items, n) or 300.0
    stats = LiveStats(remaining_mib=remaining / MIB, dirty_rate_mibs=(_num(f, "dirty_rate_bps") or 0) / MIB,
                      throughput_mibs=bps / MIB, iteration=n, elapsed_s=(_num(f, "time_elapsed_ms") or 0) / 1000,
                      downtime_ms=limit, pass_elapsed_s=pass_elapsed_s(f, n),
                      processed_mib=None if processed is None else processed / MIB)
    return live_eta(stats, touched_mib=total / MIB, memory_mib=total / MIB, pending=pending_items(items, n),
                    premigration=premigration(record.get("plan")),
                    auto_converge=params.auto_converge, postcopy_allowed=not params.parallel,
                    check_chunk_s=check_chunk("cap" if params.bandwidth_mibs else "measured"),
                    switchover_syncs=SWITCHOVER_SYNCS, max_seconds=time_limit_s(params, total / MIB))


def with_eta(record: dict) -> dict:
    """The record's dict with `eta` ({seconds, outcome}, or null when there is none)."""
    eta = migration_eta(record)
    return {**record, "eta": None if eta is None else eta.to_wire()}
