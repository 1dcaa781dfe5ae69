"""What an agent's migration status means to the engine (pure: typed status in, plain values out).

The orchestrator follows the source agent's VM.getMigrationStatus (read with
`ferry.protocol.status.MigrationStatus.from_wire`); these functions turn one answer into the
figures the API serves while it runs, the engine state it ends in, the result that is kept,
and the texts of the audit events. Nothing here talks to an agent or the database.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ferry.engine.audit import format_duration
from ferry.engine.destination import MAX_HOSTS, may_rerun
from ferry.protocol.status import JobState, MigrationStatus

MIB = 1024 * 1024

# The live figures kept from each sample, under the engine's names (the status's own names,
# but for the agent's state and percent); only those the agent reported.
_FIGURES = {"state": "agent_state", "message": "message", "progress": "agent_progress",
            **{name: name for name in (
                "iteration", "data_total", "data_processed", "data_remaining", "memory_total",
                "memory_processed", "memory_remaining", "bandwidth_bps", "dirty_rate_bps",
                "time_elapsed_ms", "max_downtime_ms", "postcopy", "dirty_sync_missed_zero_copy")}}


def _num(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def figures_from_status(status: MigrationStatus) -> dict[str, Any]:
    """The live figures of one VM.getMigrationStatus answer, under the engine's names."""
    return {ours: getattr(status, attr) for attr, ours in _FIGURES.items() if attr in status.reported}


def with_pass_start(figures: dict[str, Any], previous: Mapping[str, Any] | None) -> dict[str, Any]:
    """The figures with `pass_started_ms`: the job's time elapsed when its iteration was first
    seen at this value (0 for QEMU's first pass, which starts with the job), so the live ETA
    knows how long the current pass has dirtied pages. Known to within one poll."""
    if "time_elapsed_ms" not in figures or "iteration" not in figures:
        return figures
    prev = previous or {}
    if prev.get("iteration") == figures["iteration"] and "pass_started_ms" in prev:
        return {**figures, "pass_started_ms": prev["pass_started_ms"]}
    first_pass = (figures["iteration"] or 0) <= 1
    return {**figures, "pass_started_ms": 0 if first_pass else figures["time_elapsed_ms"]}


def engine_state(status: MigrationStatus) -> str | None:
    """The engine state an agent status ends in (the agent's final state, by the same name),
    or None while the agent is still migrating.

    An agent that knows nothing of the migration ("idle") is treated as failed: it was restarted
    or the job vanished, so nothing is moving the VM any more."""
    if status.state.final:
        return status.state.name
    if status.state.active:
        return None
    return "FAILED"


def progress_percent(status: MigrationStatus, previous: int = 0) -> int:
    """The agent's percent (the agent applies facts §3 to libvirt's job stats), 100 once it says
    the migration succeeded, and never backwards in the engine's record either."""
    if status.state is JobState.SUCCEEDED:
        return 100
    agent = _num(status.progress) or 0
    return max(previous, min(100, max(0, agent)))


def throughput_mibps(bytes_: int | None, millis: int | None) -> float | None:
    if not bytes_ or not millis or millis <= 0:
        return None
    return round(bytes_ / MIB / (millis / 1000), 1)


def transfer_figures(status: MigrationStatus) -> dict[str, Any]:
    """Whether the final figures cover the whole migration, and QEMU's own transfer rate then.

    The agent's final figures are the completed job's, or the last polled ones when libvirt's
    job-completed event did not come (the lab saw it for a 1.5 s migration whose last poll was
    during setup: 0.4 MiB/s, which then served as the host pair's speed). Only figures with
    nothing remaining cover the migration (None: no remaining figure reported). QEMU's
    completed bandwidth is bytes over the transfer time without the setup (its `mbps`): for a
    small guest the setup is a large share of the whole time (1.479 s for 338 MiB read
    229 MiB/s as bytes/time, 278 MiB/s as QEMU's)."""
    remaining = _num(status.data_remaining)
    # None: the agent did not say (an older one, or a status without figures)
    complete = None if remaining is None else status.state is JobState.SUCCEEDED and remaining == 0
    bps = _num(status.bandwidth_bps)
    return {"figures_complete": complete,
            "transfer_mibps": round(bps / MIB, 1) if complete and bps and bps > 0 else None}


def attempt_summary(status: MigrationStatus, destination: str) -> dict[str, Any]:
    """How one attempt (one destination) ended: what the agent did and measured."""
    total_ms = _num(status.total_time_ms)
    bytes_ = _num(status.bytes_transferred) or _num(status.data_processed)
    return {
        "destination": destination,
        "agent_state": status.state.value,
        "error": status.error,
        "message": status.message,
        "duration_ms": total_ms,
        "downtime_ms": _num(status.downtime_ms),
        "bytes": bytes_,
        "iterations": _num(status.iteration),
        "throughput_mibps": throughput_mibps(bytes_, total_ms),
        **transfer_figures(status),
        "flags": list(status.flags),
        "typed_params": dict(status.typed_params),
        "schedule_actions": list(status.schedule_actions),
        "unrecognized_params": list(status.unrecognized_params),
        "notes": list(status.notes),
        "agent_timeline": agent_timeline(status),
        # only a zero-copy migration's agent reads it (QMP); the last figure it saw
        "dirty_sync_missed_zero_copy": _num(status.dirty_sync_missed_zero_copy),
        "postcopy": bool(status.postcopy),
        # QEMU's switch-over pause into post-copy (libvirt reports none; also downtime_ms then)
        "postcopy_downtime_ms": _num(status.postcopy_downtime_ms),
        # the highest vCPU throttle the job stats showed (auto-converge, or adaptive's raise)
        "auto_converge_throttle_max": _num(status.auto_converge_throttle_max),
    }


_TIMELINE = {"started_at": "job_started_at", "migration_started_at": "libvirt_started_at",
             "migration_returned_at": "libvirt_returned_at", "ended_at": "job_ended_at"}


def agent_timeline(status: MigrationStatus) -> dict[str, float]:
    """When the source agent took the job, called and saw virDomainMigrateToURI3 return, and
    ended the job (epoch seconds; only what the agent reported): where a migration's time went."""
    return {ours: float(getattr(status, attr)) for attr, ours in _TIMELINE.items()
            if getattr(status, attr) is not None}


def migration_result(final: Mapping[str, Any], plan: Mapping[str, Any] | None, wall_s: float,
                     attempts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The result kept with a finished migration: the last attempt's figures, the plan's
    explanation, the engine's wall time and how many destinations were tried."""
    plan = plan or {}
    attempts = list(attempts)
    return {
        **{k: final.get(k) for k in ("destination", "agent_state", "error", "duration_ms", "downtime_ms",
                                       "bytes", "iterations", "throughput_mibps", "figures_complete",
                                       "transfer_mibps", "flags", "typed_params",
                                       "schedule_actions", "unrecognized_params", "notes",
                                       "dirty_sync_missed_zero_copy", "postcopy", "postcopy_downtime_ms",
                                       "auto_converge_throttle_max")},
        "wall_s": round(wall_s, 3),
        "hosts_tried": [a.get("destination") for a in attempts],
        "zerocopy_requested": bool((plan.get("params") or {}).get("zerocopy")),
        "parallel_connections": (plan.get("params") or {}).get("parallel"),
        "explanation": list(plan.get("explanation") or []),
        "plan_notes": list(plan.get("notes") or []),
    }


def done_fields(result: Mapping[str, Any]) -> dict[str, str]:
    """VM_MIGRATION_DONE's Duration (the migration itself), Total (request to end) and Actual
    downtime."""
    duration = result.get("duration_ms")
    downtime = result.get("downtime_ms")
    return {
        "duration": format_duration(None if duration is None else duration / 1000),
        "total": format_duration(result.get("wall_s")),
        "downtime": "?" if downtime is None else f"{downtime} ms",
    }


def failure_reason(status: MigrationStatus) -> str:
    return str(status.error or status.message or f"agent state {status.state.value!r}")


def vm_on_source(vm_stats_status: str | None) -> bool:
    """Whether VM.getStats on the source says the VM still runs there."""
    return vm_stats_status in ("Up", "Paused", "Migration Source")


# ---- plan adjustments as an event --------------------------------------------------------------

def failed_zerocopy_checks(capabilities: Mapping[str, Any] | None) -> list[str]:
    """The reasons of the agent's failed zero-copy checks (Host.getCapabilities)."""
    checks = (capabilities or {}).get("zerocopy_checks") or []
    return [str(c.get("reason")) for c in checks if isinstance(c, dict) and c.get("result") == "fail"]


def adjustment_texts(explanation: Iterable[Mapping[str, Any]],
                     source_capabilities: Mapping[str, Any] | None = None) -> list[str]:
    """One line per value the planner set differently from the admin's settings, e.g.
    "zerocopy not sent: source host h1 reports zero-copy unsupported (agent: ...)"."""
    lines = []
    for entry in explanation:
        field, to, reason = entry.get("field"), entry.get("to"), entry.get("reason")
        if field == "zerocopy" and to in ("not sent", "off"):
            text = f"zerocopy {to}: {reason}"
            agent_reasons = failed_zerocopy_checks(source_capabilities)
            if to == "not sent" and agent_reasons:
                text += f" (agent: {'; '.join(agent_reasons)})"
        else:
            text = f"{field} {entry.get('from')} → {to}: {reason}"
        lines.append(text)
    return lines


@dataclass(frozen=True)
class RerunDecision:
    rerun: bool
    why_not: str | None = None


def rerun_decision(*, tried: int, vm_on_source: bool, cancelled: bool, destination_given: bool) -> RerunDecision:
    """Whether a failed attempt is tried again elsewhere (ferry.engine.destination.may_rerun),
    and if not, why (for the event)."""
    if may_rerun(tried_hosts=tried, vm_on_source=vm_on_source, cancelled=cancelled,
                 destination_given=destination_given):
        return RerunDecision(True)
    if cancelled:
        return RerunDecision(False, "the migration was cancelled")
    if not vm_on_source:
        return RerunDecision(False, "the VM no longer runs on the source host")
    if destination_given:
        return RerunDecision(False, "the destination was given by the user")
    return RerunDecision(False, f"{tried} hosts were tried (at most {MAX_HOSTS})")
