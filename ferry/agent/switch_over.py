"""May an abort run now, or is the switch-over under way? (pure; the job asks libvirt's state).

Why: QEMU starts the switch-over by stopping the guest's vCPUs (libvirt: the source domain
paused, reason "migration"), then runs one last dirty-bitmap sync, which it reports as a new
pass, and libvirt as a new iteration (VIR_DOMAIN_EVENT_ID_MIGRATION_ITERATION). A schedule whose
last downtime step let the migration converge and whose next item is `abort` would therefore
fire that abort during the switch-over of a migration that is finishing. On this lab's QEMU
10.0.2 / libvirt 11.3.0 such an abort was accepted and migrateToURI3 then never returned
("Suspend workload if needed", 2048 MiB guest: running 376 s until the VM was destroyed, once;
still "running" at the benchmark's 600 s limit, once). Vdsm polls its schedule every 10 s and
so rarely lands in that window; Ferry hears the event at once, so it must look first.

Rules:
1. not paused: the guest runs, pre-copy goes on: abort now;
2. paused by its owner before the migration began (a paused VM migrates, and stays paused): the
   pause says nothing of the switch-over: abort now;
3. paused for the migration: the switch-over is under way: the abort waits; the migration
   either completes (the abort is moot) or the guest resumes here and the next poll aborts it;
4. paused for post-copy: libvirt refuses to abort post-copy anyway; waiting is the same answer.
"""
from __future__ import annotations

from dataclasses import dataclass

RUNNING, PAUSED_BY_OWNER, PAUSED_FOR_MIGRATION, PAUSED_FOR_POSTCOPY = "running", "owner", "migration", "postcopy"


@dataclass(frozen=True)
class AbortCheck:
    now: bool
    reason: str


def check_abort(source_state: str, *, paused_at_start: bool) -> AbortCheck:
    """`source_state`: RUNNING, PAUSED_BY_OWNER, PAUSED_FOR_MIGRATION or PAUSED_FOR_POSTCOPY."""
    if source_state == RUNNING:
        return AbortCheck(True, "the guest runs on the source: pre-copy goes on")
    if paused_at_start and source_state == PAUSED_BY_OWNER:
        return AbortCheck(True, "the VM was paused before the migration began")
    if source_state == PAUSED_FOR_MIGRATION:
        return AbortCheck(False, "the switch-over is under way (the source paused the guest to finish); "
                                 "the abort waits for its outcome")
    if source_state == PAUSED_FOR_POSTCOPY:
        return AbortCheck(False, "post-copy runs: libvirt does not abort it")
    return AbortCheck(True, "the guest is paused on the source for another reason")
