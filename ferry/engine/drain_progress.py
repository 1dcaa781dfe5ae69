"""A drain's forecast and progress: each VM's forecast from its plan, the whole drain's ETA,
and the one progress view (`ferry host maintenance --wait`, `--json`, GET .../maintenance).

Why here and pure: the order of a drain and its ETA both come from the pre-copy forecast
(ferry.forecast), and the view must be the same for the CLI, scripts and the dashboard.

- `vm_forecast`: the forecast of one VM's migration from its plan's VM.migrate params (the
  bandwidth cap, the convergence schedule, auto-converge) and its workload (touched memory and
  dirty rate when the inventory knows them; else all memory touched and no dirtying). The
  bandwidth is the cap, at most UNCAPPED_MIBS (the lab's measured plain throughput: a cap above
  what the hosts reach is no prediction).
- `drain_eta`: list scheduling of what is left over the source's outgoing slots: the running
  migrations end at their remaining time, the queued ones start in the drain's order on the
  first free slot; the ETA is when the last ends. Failed or blocked VMs have no end: no ETA.
- `calibration`: once VMs of this drain have moved, how long they really took against their
  forecast (sum of wall times / sum of forecasts); the remaining forecasts are scaled by it, so
  the ETA learns the hosts' real pace (the lab's TCG guests under load run well below 340 MiB/s).
- `progress_view`: VMs done/total, bytes done/expected, the ETA, one line per running migration.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ferry.forecast import ForecastInputs, forecast

UNCAPPED_MIBS = 340.0    # lab-facts: plain migrations ran at ~340 MiB/s (destination-bound)
MIB = 1 << 20


def _stalling(schedule: Mapping[str, Any] | None) -> tuple[int | None, tuple]:
    """(init downtime ms, stalling items) in the forecast's neutral form."""
    if not schedule:
        return None, ()
    init = None
    for a in schedule.get("init") or []:
        if a.get("name") == "setDowntime" and a.get("params"):
            init = int(a["params"][0])
    items = []
    for s in schedule.get("stalling") or []:
        action = s.get("action") or {}
        name = action.get("name")
        value = int(action["params"][0]) if name == "setDowntime" and action.get("params") else None
        if name in ("setDowntime", "abort", "postcopy"):
            items.append((int(s.get("limit", -1)), name, value))
    return init, tuple(items)


def vm_forecast(memory_mib: int, workload: Mapping[str, Any] | None, params: Mapping[str, Any]) -> dict[str, Any]:
    """{seconds (None: never ends), mib (what is sent), outcome} for one VM's migration."""
    workload = workload or {}
    touched = float(min(memory_mib, workload.get("fill_mib") or memory_mib))
    dirty = float(workload.get("dirty_mib_s") or 0)
    cap = params.get("maxBandwidth")
    bandwidth = min(float(cap), UNCAPPED_MIBS) if isinstance(cap, int | float) and cap > 0 else UNCAPPED_MIBS
    init, stalling = _stalling(params.get("convergenceSchedule"))
    f = forecast(ForecastInputs(memory_mib=float(memory_mib), touched_mib=touched, dirty_rate_mibs=dirty,
                                bandwidth_mibs=bandwidth, init_downtime_ms=init, stalling=stalling,
                                auto_converge=bool(params.get("autoConverge")),
                                parallel=int(params.get("parallel") or 0)))
    sent = sum(s.send_mib for s in f.steps if s.fires != "abort")
    return {"seconds": None if f.total_seconds is None else round(f.total_seconds, 2),
            "mib": round(sent, 1), "outcome": f.outcome}


def drain_eta(running_left_s: Sequence[float | None], queued_s: Sequence[float | None], slots: int) -> float | None:
    """Seconds until the last VM has left: running ones end after their remaining time, queued
    ones (in the drain's order) take the first free slot. None when any has no end."""
    if any(s is None for s in running_left_s) or any(s is None for s in queued_s):
        return None
    running = sorted(max(0.0, float(s)) for s in running_left_s)  # type: ignore[arg-type]
    lanes = running + [0.0] * max(0, max(1, slots) - len(running))
    ends = list(running)
    for s in queued_s:
        lanes.sort()
        end = lanes.pop(0) + float(s)  # type: ignore[arg-type]
        ends.append(end)
        lanes.append(end)
    return round(max(ends), 1) if ends else 0.0


def calibration(items: Sequence[Mapping[str, Any]]) -> float:
    """Real / forecast time of this drain's finished migrations; 1.0 before any has finished."""
    pairs = [(i.get("duration_s"), i.get("forecast_s")) for i in items if i.get("state") == "done"]
    real = sum(float(d) for d, f in pairs if d and f)
    forecast_total = sum(float(f) for d, f in pairs if d and f)
    return real / forecast_total if forecast_total > 0 and real > 0 else 1.0


def _scaled(seconds: Any, factor: float) -> float | None:
    return None if seconds is None else round(float(seconds) * factor, 2)


def _running_line(item: Mapping[str, Any], m: Mapping[str, Any] | None, factor: float = 1.0) -> dict[str, Any]:
    figures = (m or {}).get("figures") or {}
    processed = figures.get("data_processed") or 0
    forecast_s = _scaled(item.get("forecast_s"), factor)
    elapsed = figures.get("time_elapsed_ms")
    left = None
    if forecast_s is not None:
        left = max(0.5, forecast_s - (elapsed or 0) / 1000) if elapsed is not None else forecast_s
    return {"vm": item["vm"], "migration_id": item.get("migration_id"), "destination": item.get("destination"),
            "state": (m or {}).get("state"), "progress": (m or {}).get("progress", 0),
            "bytes": processed, "eta_seconds": None if left is None else round(left, 1),
            "paused_vm": bool(item.get("paused"))}


def progress_view(drain: Mapping[str, Any], host_status: str,
                  migrations: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The drain's progress from its record (`to_dict()`) and its migrations' records (by id)."""
    items = drain.get("items") or []
    done = [i for i in items if i["state"] in ("done", "gone")]
    running = [i for i in items if i["state"] == "migrating"]
    queued = [i for i in items if i["state"] in ("queued", "blocked")]
    factor = calibration(items)
    lines = [_running_line(i, migrations.get(i.get("migration_id") or ""), factor) for i in running]
    bytes_done = sum(int(i.get("bytes") or 0) for i in done) + sum(int(line["bytes"] or 0) for line in lines)
    bytes_expected = sum(int((i.get("forecast_mib") or 0) * MIB) for i in items if i["state"] != "gone")
    slots = min((int(i.get("outgoing_limit") or 1) for i in items), default=1)
    stuck = [i for i in items if i["state"] in ("failed", "blocked")]
    eta = None if stuck or drain.get("state") == "PAUSED" else drain_eta(
        [line["eta_seconds"] for line in lines], [_scaled(i.get("forecast_s"), factor) for i in queued], slots)
    return {
        "host": drain.get("host"), "host_status": host_status, "drain_id": drain.get("id"),
        "state": drain.get("state"), "order": drain.get("order"), "reason": drain.get("reason"),
        "vms_total": len(items), "vms_done": len(done), "vms_running": len(running), "vms_queued": len(queued),
        "bytes_done": bytes_done, "bytes_expected": max(bytes_expected, bytes_done),
        "eta_seconds": eta, "eta_calibration": round(factor, 2), "running": lines,
        "stuck": [{"vm": i["vm"], "state": i["state"], "reason": i.get("reason")} for i in stuck],
        "items": items, "created_at": drain.get("created_at"), "finished_at": drain.get("finished_at"),
    }
