"""What an agent's migration status means to the engine (pure: plain dicts in, plain values out).

The orchestrator polls the source agent's VM.getMigrationStatus; these functions turn one answer
into the figures the API serves while it runs, the engine state it ends in, the result that is
kept, and the texts of the audit events. Nothing here talks to an agent or the database.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ferry.engine.audit import format_duration
from ferry.engine.destination import MAX_HOSTS, may_rerun

MIB = 1024 * 1024

# Agent job states (ferry.agent.migration) -> engine migration states.
AGENT_FINAL = {"succeeded": "SUCCEEDED", "failed": "FAILED", "cancelled": "CANCELLED", "aborted": "ABORTED"}
AGENT_ACTIVE = ("pending", "waiting", "running")

# Figures kept from each sample (agent key -> our key); the agent's units: bytes, bytes/s, ms.
_FIGURE_KEYS = {
    "state": "agent_state", "message": "message", "progress": "agent_progress", "iteration": "iteration",
    "dataTotal": "data_total", "dataProcessed": "data_processed", "dataRemaining": "data_remaining",
    "memoryTotal": "memory_total", "memoryProcessed": "memory_processed",
    "memoryRemaining": "memory_remaining", "bandwidth": "bandwidth_bps", "dirtyRate": "dirty_rate_bps",
    "timeElapsed": "time_elapsed_ms", "maxDowntime": "max_downtime_ms", "postcopy": "postcopy",
}


def _num(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def figures_from_status(status: Mapping[str, Any]) -> dict[str, Any]:
    """The live figures of one VM.getMigrationStatus answer, under the engine's names."""
    return {ours: status.get(theirs) for theirs, ours in _FIGURE_KEYS.items() if theirs in status}


def engine_state(status: Mapping[str, Any]) -> str | None:
    """The engine state an agent status ends in, or None while the agent is still migrating.

    An agent that knows nothing of the migration ("idle") is treated as failed: it was restarted
    or the job vanished, so nothing is moving the VM any more."""
    state = status.get("state")
    if state in AGENT_FINAL:
        return AGENT_FINAL[state]
    if state in AGENT_ACTIVE:
        return None
    return "FAILED"


def progress_percent(status: Mapping[str, Any], previous: int = 0) -> int:
    """The agent's percent (the agent applies facts §3 to libvirt's job stats), 100 once it says
    the migration succeeded, and never backwards in the engine's record either."""
    if status.get("state") == "succeeded":
        return 100
    agent = _num(status.get("progress")) or 0
    return max(previous, min(100, max(0, agent)))


def throughput_mibps(bytes_: int | None, millis: int | None) -> float | None:
    if not bytes_ or not millis or millis <= 0:
        return None
    return round(bytes_ / MIB / (millis / 1000), 1)


def attempt_summary(status: Mapping[str, Any], destination: str) -> dict[str, Any]:
    """How one attempt (one destination) ended: what the agent did and measured."""
    total_ms = _num(status.get("totalTime"))
    bytes_ = _num(status.get("bytesTransferred")) or _num(status.get("dataProcessed"))
    return {
        "destination": destination,
        "agent_state": status.get("state"),
        "error": status.get("error"),
        "message": status.get("message"),
        "duration_ms": total_ms,
        "downtime_ms": _num(status.get("downtime")),
        "bytes": bytes_,
        "iterations": _num(status.get("iteration")),
        "throughput_mibps": throughput_mibps(bytes_, total_ms),
        "flags": list(status.get("flags") or []),
        "typed_params": dict(status.get("typedParams") or {}),
        "schedule_actions": list(status.get("scheduleActions") or []),
        "unrecognized_params": list(status.get("unrecognizedParams") or []),
        "notes": list(status.get("notes") or []),
        "agent_timeline": agent_timeline(status),
    }


_TIMELINE_KEYS = {"startedAt": "job_started_at", "migrationStartedAt": "libvirt_started_at",
                  "migrationReturnedAt": "libvirt_returned_at", "endedAt": "job_ended_at"}


def agent_timeline(status: Mapping[str, Any]) -> dict[str, float]:
    """When the source agent took the job, called and saw virDomainMigrateToURI3 return, and
    ended the job (epoch seconds; only what the agent reported): where a migration's time went."""
    return {ours: float(status[theirs]) for theirs, ours in _TIMELINE_KEYS.items()
            if isinstance(status.get(theirs), (int, float)) and not isinstance(status.get(theirs), bool)}


def migration_result(final: Mapping[str, Any], plan: Mapping[str, Any] | None, wall_s: float,
                     attempts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The result kept with a finished migration: the last attempt's figures, the plan's
    explanation, the engine's wall time and how many destinations were tried."""
    plan = plan or {}
    attempts = list(attempts)
    return {
        **{k: final.get(k) for k in ("destination", "agent_state", "error", "duration_ms", "downtime_ms",
                                       "bytes", "iterations", "throughput_mibps", "flags", "typed_params",
                                       "schedule_actions", "unrecognized_params", "notes")},
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


def failure_reason(status: Mapping[str, Any]) -> str:
    return str(status.get("error") or status.get("message") or f"agent state {status.get('state')!r}")


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
