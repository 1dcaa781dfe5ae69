"""VM.migrateForceComplete (Ferry's verb, after Nova's force-complete): make a running outgoing
migration finish now.

Why two ways: post-copy ends a migration that cannot converge without a long pause, but only
when the migration was started with VIR_MIGRATE_POSTCOPY (its policy's schedule has post-copy)
and without parallel connections (QEMU 10.0 refuses post-copy with multifd). Otherwise the
downtime limit is raised so that what is left fits in it: QEMU stops the guest at the end of
the current iteration and sends the rest (a longer pause, once). `decide` is the pure rule;
`handle` runs it on the agent's job, through the job's own action path, so the action shows in
the migration's status with the schedule's actions. The answer says which happened.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ferry.common.jsonrpc import agent_error
from ferry.protocol.flags import POSTCOPY as POSTCOPY_FLAG
from ferry.protocol.schedule import POSTCOPY, SET_DOWNTIME, Action

MIN_DOWNTIME_MS = 2_000        # at least this: the limit must beat what one iteration leaves
MAX_DOWNTIME_MS = 60_000       # a minute of pause is the most force-complete allows
MARGIN = 1.5                   # the rest grows while the last iteration runs


@dataclass(frozen=True)
class Decision:
    mode: str                  # "postcopy" | "downtime"
    downtime_ms: int | None
    reason: str


def decide(*, postcopy_flag: bool, parallel: int | None, remaining_bytes: int | None,
           bandwidth_bps: int | None, postcopy_running: bool = False) -> Decision:
    """Post-copy when the migration allows it, else a downtime limit the rest fits in."""
    if postcopy_running:
        return Decision("none", None, "the migration is already in post-copy: it ends by itself")
    if postcopy_flag and not parallel:
        return Decision(POSTCOPY, None, "switched to post-copy (the migration allows it)")
    why = ("post-copy not allowed with parallel connections (QEMU refuses post-copy with multifd)"
           if postcopy_flag else "post-copy not allowed: the migration was not started with "
                                 "VIR_MIGRATE_POSTCOPY (its policy has no post-copy)")
    if remaining_bytes and bandwidth_bps:
        needed = int(remaining_bytes / bandwidth_bps * 1000 * MARGIN)
    else:
        needed = MAX_DOWNTIME_MS   # nothing measured yet: the most we allow
    ms = max(MIN_DOWNTIME_MS, min(MAX_DOWNTIME_MS, needed))
    return Decision("downtime", ms, f"{why}; downtime limit raised to {ms} ms so the rest is sent now")


def handle(agent: Any, params: dict) -> dict:
    """The verb on the agent: {vmID} -> {status, mode, downtimeMs, reason}."""
    vm_id = agent._vm_id(params)
    job = agent._running_job(vm_id)
    if job is None:
        agent._lookup(vm_id)
        raise agent_error("migCancelErr", f"Migration not in progress for VM {vm_id}", vmID=vm_id)
    names = job.flags.names if job.flags is not None else ()
    f = job.figures
    decision = decide(postcopy_flag=POSTCOPY_FLAG in names, parallel=job.params.parallel,
                      remaining_bytes=f.data_remaining, bandwidth_bps=f.memory_bps,
                      postcopy_running=bool(job._postcopy))
    if decision.mode == POSTCOPY:
        job._execute(Action(POSTCOPY), None)
    elif decision.mode == "downtime":
        job._execute(Action(SET_DOWNTIME, decision.downtime_ms), None)
    record = job.actions_run[-1] if decision.mode != "none" and job.actions_run else {"ok": True}
    if not record.get("ok", True):
        raise agent_error("migrateErr", f"force-complete ({decision.mode}) failed: {record.get('error')}")
    return {"status": {"code": 0, "message": decision.reason}, "mode": decision.mode,
            "downtimeMs": decision.downtime_ms, "reason": decision.reason}
