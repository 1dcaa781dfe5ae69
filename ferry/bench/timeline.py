"""Where a Ferry migration's wall time goes, from the timestamps its parts recorded (pure).

The benchmark's engine driver keeps when it sent POST /api/vms/{vm}/migrate and when it saw the
end; the engine's record has created/started/finished times; the source agent reports when it
took the job, called and saw virDomainMigrateToURI3 return, and ended the job (the attempt's
`agent_timeline`). All are epoch seconds from processes on the same machine, so consecutive
differences are the phases below. The control plane is everything outside
virDomainMigrateToURI3; inside it, QEMU's own migration time and libvirt's steps around it
(prepare on the destination, confirm on the source, which stops the source QEMU) are what bare
virsh waits for too.
"""
from __future__ import annotations

from dataclasses import dataclass

from ferry.bench.stats import Summary, summarize


@dataclass(frozen=True)
class Phase:
    key: str
    label: str
    start: str        # timestamp names (see module docstring)
    end: str
    control_plane: bool


PHASES = (
    Phase("engine_accept", "REST request, plan, record created", "bench_sent_at", "engine_created_at", True),
    Phase("engine_start", "engine thread: start events, RUNNING", "engine_created_at", "engine_started_at", True),
    Phase("to_agent", "VM.migrate to the source agent", "engine_started_at", "job_started_at", True),
    Phase("agent_prepare", "agent: slot, destination's VM.migrationCreate, flags, XML", "job_started_at",
          "libvirt_started_at", True),
    Phase("libvirt", "virDomainMigrateToURI3 (libvirt and QEMU)", "libvirt_started_at", "libvirt_returned_at",
          False),
    Phase("agent_finish", "agent: final figures (libvirt's JOB_COMPLETED)", "libvirt_returned_at", "job_ended_at",
          True),
    Phase("engine_hears", "engine learns of the end and records it", "job_ended_at", "engine_finished_at", True),
    Phase("bench_hears", "benchmark sees the end (REST)", "engine_finished_at", "bench_saw_end_at", True),
)


def run_timestamps(detail: dict) -> dict[str, float]:
    """The timestamps of one engine-driven run's driver detail: the driver's and engine's
    (`timeline`), and the last attempt's agent timeline."""
    times = dict(detail.get("timeline") or {})
    attempts = detail.get("attempts") or []
    if attempts:
        times.update(attempts[-1].get("agent_timeline") or {})
    return times


def phase_seconds(detail: dict, qemu_ms: float | None) -> dict[str, float] | None:
    """Seconds per phase of one run, plus `control_plane` (all phases outside libvirt),
    `qemu` (QEMU's own migration time) and `libvirt_around_qemu` (the rest of the libvirt call);
    None when a timestamp is missing (an older engine or agent, or a refused request)."""
    times = run_timestamps(detail)
    out: dict[str, float] = {}
    for p in PHASES:
        if p.start not in times or p.end not in times:
            return None
        out[p.key] = times[p.end] - times[p.start]
    out["control_plane"] = sum(out[p.key] for p in PHASES if p.control_plane)
    if qemu_ms is not None:
        out["qemu"] = qemu_ms / 1000
        out["libvirt_around_qemu"] = out["libvirt"] - out["qemu"]
    return out


def breakdown(records: list[dict]) -> dict[str, Summary]:
    """Median (min–max) of each phase over the successful engine-driven Ferry runs that carry
    all timestamps; empty when none do."""
    runs = []
    for r in records:
        if r.get("kind") != "migrate" or r.get("driver") != "ferry" or not r.get("ok"):
            continue
        phases = phase_seconds(r.get("driver_detail") or {}, (r.get("figures") or {}).get("total_ms"))
        if phases is not None:
            runs.append(phases)
    keys = [p.key for p in PHASES] + ["control_plane", "qemu", "libvirt_around_qemu"]
    out = {}
    for k in keys:
        s = summarize(run.get(k) for run in runs)
        if s is not None:
            out[k] = s
    return out
