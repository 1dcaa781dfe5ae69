"""What really happened to a migration the engine lost sight of (pure): libvirt is the truth.

When the engine is in doubt -- VM.migrate timed out, the source agent stopped answering, an
agent came back saying "no migration", the VM vanished from the source, the engine itself
restarted, or an attempt ended FAILED and a rerun is next -- it asks the source and the
destination agent what their libvirt says (VM.getStats: where the domain runs and whether it is
paused or still migrating; VM.getMigrationStatus: whether a job is active) and `reconcile`
decides from those two views alone. The orchestrator (ferry.engine.orchestrator) does the
asking and acts on the verdict:

- MIGRATING: a job still runs: follow it; start nothing (no rerun beside a running attempt);
- ON_DESTINATION: libvirt runs the VM on the destination: the migration SUCCEEDED;
- ON_SOURCE: libvirt runs the VM on the source and no job is active: the attempt failed, a
  rerun may start;
- NOWHERE: neither host runs it: FAILED, the VM is down;
- BOTH: both hosts run it (libvirt should never let this happen): FAILED, said loudly;
- UNKNOWN: the views cannot tell (an agent cannot be asked, or a VM.migrate whose fate is
  unknown may still start): ask again later; never a rerun.

libvirt resumes the destination's copy only once the migration completed, and a source copy
left paused by a lost confirm step is not the running VM: a *running* (Up) destination copy
therefore means the VM moved. A *paused* destination copy may be an incoming one libvirt has
not resumed, so it proves nothing unless the source has no copy at all.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from ferry.protocol.status import JobState

UP, PAUSED, DOWN = "Up", "Paused", "Down"
MIGRATION_SOURCE, MIGRATION_DESTINATION = "Migration Source", "Migration Destination"


class Reality(StrEnum):
    MIGRATING = "migrating"
    ON_DESTINATION = "on destination"
    ON_SOURCE = "on source"
    NOWHERE = "nowhere"
    BOTH = "both"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class HostView:
    """What one host's agent says of the VM: `vm` is VM.getStats' status ("Up", "Paused",
    "Migration Source", "Migration Destination", "Down"; None = libvirt has no such domain),
    `job` VM.getMigrationStatus' state (None = not asked or not answered)."""

    reachable: bool = True
    vm: str | None = None
    job: JobState | None = None

    @classmethod
    def unreachable(cls) -> HostView:
        return cls(reachable=False)

    @property
    def running(self) -> bool:
        """libvirt runs the guest's CPUs here (not paused, not an incoming copy)."""
        return self.reachable and self.vm == UP

    @property
    def paused(self) -> bool:
        return self.reachable and self.vm == PAUSED

    @property
    def has_copy(self) -> bool:
        return self.reachable and self.vm in (UP, PAUSED, MIGRATION_SOURCE, MIGRATION_DESTINATION)

    @property
    def absent(self) -> bool:
        """Asked, and libvirt has no live copy here (none, or a shut-off definition)."""
        return self.reachable and self.vm in (None, DOWN)


@dataclass(frozen=True)
class Verdict:
    reality: Reality
    reason: str

    @property
    def settled(self) -> bool:
        """The migration is over and where the VM runs is known."""
        return self.reality not in (Reality.MIGRATING, Reality.UNKNOWN)

    @property
    def may_rerun(self) -> bool:
        """Only a VM libvirt runs on the source with no job may be tried elsewhere."""
        return self.reality is Reality.ON_SOURCE


Rule = Callable[[HostView, HostView, bool], "Verdict | None"]


def _source_job_active(src: HostView, dst: HostView, send_in_doubt: bool) -> Verdict | None:
    if src.reachable and (src.vm == MIGRATION_SOURCE or (src.job is not None and src.job.active)):
        return Verdict(Reality.MIGRATING, "the source's migration job is still active")
    return None


def _landed(src: HostView, dst: HostView, send_in_doubt: bool) -> Verdict | None:
    if not dst.running:
        return None
    if src.running:
        return Verdict(Reality.BOTH, "libvirt runs the VM on both the source and the destination")
    if src.paused:
        return Verdict(Reality.ON_DESTINATION, "the destination runs the VM; the source's copy is paused "
                                               "(libvirt's confirm step did not reach it)")
    if not src.reachable:
        return Verdict(Reality.ON_DESTINATION, "the destination runs the VM (libvirt resumes it there only "
                                               "once the migration completed); the source cannot be asked")
    return Verdict(Reality.ON_DESTINATION, "the destination runs the VM and the source has no copy")


def _source_says_done(src: HostView, dst: HostView, send_in_doubt: bool) -> Verdict | None:
    if src.reachable and src.job is JobState.SUCCEEDED and src.absent and not dst.reachable:
        return Verdict(Reality.ON_DESTINATION, "the source's libvirt job completed and its copy is gone; "
                                               "the destination cannot be asked")
    return None


def _arrived_paused(src: HostView, dst: HostView, send_in_doubt: bool) -> Verdict | None:
    if dst.paused and src.absent:
        return Verdict(Reality.ON_DESTINATION, "the destination holds the VM paused and the source has no copy")
    return None


def _still_receiving(src: HostView, dst: HostView, send_in_doubt: bool) -> Verdict | None:
    receiving = dst.reachable and (dst.vm == MIGRATION_DESTINATION or (dst.job is not None and dst.job.active))
    if not receiving:
        return None
    if not src.reachable:
        return Verdict(Reality.MIGRATING, "the destination still receives the VM; the source cannot be asked")
    if src.absent:
        return Verdict(Reality.MIGRATING, "the source's copy is gone and the destination is finishing the switch-over")
    if src.job is not None and src.job.final:
        return None   # the source's job ended: the destination's expectation is left over
    return Verdict(Reality.UNKNOWN, "the destination still receives the VM but the source knows no job")


def _send_may_start(src: HostView, dst: HostView, send_in_doubt: bool) -> Verdict | None:
    if send_in_doubt and src.reachable and src.has_copy:
        return Verdict(Reality.UNKNOWN, "VM.migrate's answer never came and the source shows no job yet: "
                                        "it may still start")
    return None


def _stayed(src: HostView, dst: HostView, send_in_doubt: bool) -> Verdict | None:
    if src.running:
        return Verdict(Reality.ON_SOURCE, "libvirt runs the VM on the source and no migration job is active")
    if src.paused and dst.reachable:
        return Verdict(Reality.ON_SOURCE, "the VM is paused on the source, no migration job is active and "
                                          "the destination does not run it")
    return None


def _gone(src: HostView, dst: HostView, send_in_doubt: bool) -> Verdict | None:
    if src.absent and dst.absent:
        return Verdict(Reality.NOWHERE, "neither the source nor the destination has a copy of the VM")
    return None


RULES: tuple[Rule, ...] = (_source_job_active, _landed, _source_says_done, _arrived_paused, _still_receiving,
                           _send_may_start, _stayed, _gone)


def reconcile(source: HostView, destination: HostView, *, send_in_doubt: bool = False) -> Verdict:
    """Where the migration stands by libvirt on both hosts; `send_in_doubt` while a VM.migrate
    whose answer never came may still reach the source's libvirt (see the module docstring)."""
    for rule in RULES:
        verdict = rule(source, destination, send_in_doubt)
        if verdict is not None:
            return verdict
    if not source.reachable and not destination.reachable:
        return Verdict(Reality.UNKNOWN, "neither the source nor the destination agent can be asked")
    if not source.reachable:
        return Verdict(Reality.UNKNOWN, "the source agent cannot be asked and the destination does not run the VM")
    return Verdict(Reality.UNKNOWN, "the source has the VM paused and the destination agent cannot be asked")


def total_seconds(requested_at: float | None, timeline: dict[str, float] | None, now: float) -> float | None:
    """A migration's Total (request to end) from the agents' clocks: the request's time (the
    record's created_at, kept across engine restarts) to the source job's end as the agent
    stamped it, else to now. Never from when this engine process began following it."""
    if requested_at is None:
        return None
    end = (timeline or {}).get("job_ended_at") or now
    return max(0.0, end - requested_at)
