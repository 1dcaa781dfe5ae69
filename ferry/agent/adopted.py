"""Migrations libvirt runs that this agent process did not start: adopted, not denied.

An agent that is killed and restarted mid-migration used to answer "no migration" while
libvirt's job ran on, and the engine recorded FAILED although the VM landed on the destination.
libvirt is the source of truth: on every (new) libvirt connection the agent looks at each
domain's job. An outgoing migration job becomes an `AdoptedJob` that follows it to its end
(job stats polls, JOB_COMPLETED event) and reports it through VM.getMigrationStatus like any
other; an incoming one becomes an expected incoming migration again.

The classification is pure (`job_kind`); the following is the migration job's own status
machinery, without the parts only the starter of a migration has (schedule, destination).
"""
from __future__ import annotations

import logging
import time

from ferry.agent import libvirt_edge
from ferry.agent.kept import call_within
from ferry.agent.migration import MigrationJob, _msg
from ferry.agent.progress import figures_from_job_stats
from ferry.protocol.migrate_params import MigrateParams
from ferry.protocol.status import INCOMING, OUTGOING, JobState

log = logging.getLogger("ferry.agent.adopted")

ADOPTED_NOTE = "adopted from libvirt: the migration was started before this agent process"


def job_kind(lv, stats: dict | None) -> str | None:
    """OUTGOING / INCOMING for a domain whose libvirt job is a running migration, else None."""
    if not stats or stats.get("type", lv.VIR_DOMAIN_JOB_NONE) in (lv.VIR_DOMAIN_JOB_NONE,
                                                                  lv.VIR_DOMAIN_JOB_COMPLETED,
                                                                  lv.VIR_DOMAIN_JOB_FAILED,
                                                                  lv.VIR_DOMAIN_JOB_CANCELLED):
        return None
    operation = stats.get("operation")
    if operation == lv.VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT:
        return OUTGOING
    if operation == lv.VIR_DOMAIN_JOB_OPERATION_MIGRATION_IN:
        return INCOMING
    return None


INCOMING_QUERY_WAIT_S = 1.0


def running_migrations(lv, domains, followed) -> list[tuple]:
    """(dom, vm_id, kind, stats) for each domain whose libvirt job is a migration that no job of
    ours follows (`followed(vm_id)`); domains that vanish meanwhile are skipped.

    libvirt answers a job query only on the source ("migration statistics are available only on
    the source host"; it may also wait behind the incoming migration), so a domain paused for a
    migration whose job query fails or does not answer within INCOMING_QUERY_WAIT_S is taken as
    incoming; a source answers its job query at once."""
    found = []
    for dom in domains:
        try:
            vm_id = dom.UUIDString()
            if followed(vm_id):
                continue
            state, reason = dom.state()[:2]
        except lv.libvirtError:
            continue
        paused_for_migration = state == lv.VIR_DOMAIN_PAUSED and reason == lv.VIR_DOMAIN_PAUSED_MIGRATION
        finished, stats, error = call_within(dom.jobStats, INCOMING_QUERY_WAIT_S)
        if not finished or error is not None:
            # libvirt 11 refuses a destination's query ("migration statistics are available only
            # on the source host"); older ones may make it wait behind the migration.
            if paused_for_migration:
                found.append((dom, vm_id, INCOMING, {}))
            continue
        kind = job_kind(lv, stats)
        if kind is not None:
            found.append((dom, vm_id, kind, stats))
    return found


def outcome_of(lv, completed: dict | None, still_here: bool) -> tuple[JobState, str]:
    """(state, message) of an adopted migration that ended, from libvirt's completed-job
    statistics when it kept them, else from where the VM is."""
    kind = (completed or {}).get("type")
    if kind == lv.VIR_DOMAIN_JOB_COMPLETED or (kind is None and not still_here):
        return JobState.SUCCEEDED, "Migration succeeded"
    if kind == lv.VIR_DOMAIN_JOB_CANCELLED:
        return JobState.CANCELLED, "Migration cancelled"
    return JobState.FAILED, "Migration failed: the migration job ended and the VM still runs on this host"


class AdoptedJob(MigrationJob):
    """Follows an outgoing libvirt migration job that another agent process started."""

    def __init__(self, *, vm_id: str, vm_name: str, dom, lv, events, slots, stats: dict,
                 status_interval: float = 1.0):
        super().__init__(vm_id=vm_id, vm_name=vm_name, dom=dom, lv=lv, events=events,
                         params=MigrateParams(dst=""), unrecognized=(), slots=slots,
                         destination=lambda dst: None, zerocopy_available=False, libvirt_transport="tcp",
                         status_interval=status_interval)
        self.adopted_stats = stats
        self.message = f"Migration in progress ({ADOPTED_NOTE})"

    def _run_steps(self) -> None:
        self._slot_taken = self.slots.try_acquire()  # it does occupy the link, if a slot is free
        figures = figures_from_job_stats(self.adopted_stats)
        self.migration_started_at = time.time() - figures.time_elapsed_ms / 1000
        unsubscribe = [
            self.events.subscribe(self.vm_id, libvirt_edge.JOB_COMPLETED, self._on_job_completed),
            self.events.subscribe(self.vm_id, libvirt_edge.LIFECYCLE, self._on_lifecycle),
        ]
        self._update_figures(figures)
        self._set(JobState.RUNNING, f"Migration in progress ({ADOPTED_NOTE})")
        log.info("VM %s: adopted a running outgoing migration (%d ms elapsed)", self.vm_name,
                 figures.time_elapsed_ms)
        try:
            while not self._cancel.is_set():
                try:
                    stats = self.dom.jobStats()
                except self.lv.libvirtError as exc:   # the domain left (transient VM migrated away)
                    log.debug("VM %s: jobStats: %s", self.vm_name, _msg(exc))
                    break
                if job_kind(self.lv, stats) != OUTGOING:
                    break
                self._update_figures(figures_from_job_stats(stats))
                self._cancel.wait(self.status_interval)
            if self._cancel.is_set():
                self._wait_for_end_after_cancel()
        finally:
            self.migration_returned_at = time.time()
            for u in unsubscribe:
                u()
        self._completed.wait(1.0)
        completed = self._completed_stats or self._completed_job_stats()
        state, message = outcome_of(self.lv, completed, self._still_here())
        if state is JobState.SUCCEEDED:
            self._succeeded()
        else:
            self._finish(state, message, (completed or {}).get("errmsg") or message)

    def _wait_for_end_after_cancel(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if job_kind(self.lv, self.dom.jobStats()) != OUTGOING:
                    return
            except self.lv.libvirtError:
                return
            time.sleep(0.2)

    def _completed_job_stats(self) -> dict | None:
        try:
            stats = self.dom.jobStats(self.lv.VIR_DOMAIN_JOB_STATS_COMPLETED)
        except self.lv.libvirtError:
            return None
        return stats if stats and stats.get("type") not in (None, self.lv.VIR_DOMAIN_JOB_NONE) else None

    def _still_here(self) -> bool:
        try:
            return bool(self.dom.isActive())
        except self.lv.libvirtError:
            return False
