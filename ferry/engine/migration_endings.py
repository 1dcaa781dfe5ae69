"""How a migration run ends, and what the orchestrator keeps of a run while it lasts.

One function per ending (succeeded, cancelled, aborted, failed-or-rerun), each writing the
record, placing the VM where the agents say it runs, and recording oVirt's audit event. They
take the run (`MigrationRun`) and where it stands (`RunContext`) rather than loose values.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ferry.common.errors import Conflict
from ferry.common.jsonrpc import TRANSPORT_ERROR, JsonRpcError
from ferry.engine import audit, zerocopy_retry
from ferry.engine import migration_outcome as outcome
from ferry.engine.db import Database, Store
from ferry.engine.db.records import MigrationRecord, MigrationState, VmStatus
from ferry.engine.forecasting import throughput_sample
from ferry.engine.monitor import AgentFactory
from ferry.engine.reconcile import HostView, Reality, Verdict, reconcile, total_seconds
from ferry.engine.services import migrations as migration_service
from ferry.engine.services.vms import vm_stats
from ferry.protocol.status import JobState, MigrationStatus

log = logging.getLogger("ferry.engine.orchestrator")


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class MigrationRun:
    """What the orchestrator keeps in memory for one running migration."""

    migration_id: str
    vm: str
    to_given: bool
    policy: str | None
    user: str
    cancel: threading.Event = field(default_factory=threading.Event)
    cancelled_by: str | None = None
    source_url: str | None = None
    vm_uuid: str | None = None
    sent: bool = False
    thread: threading.Thread | None = None
    last_status: MigrationStatus | None = None   # the source agent's last status of a job (not "idle")
    # Held around every write of the migration's state, so a cancel never overwrites an end.
    state_lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class RunContext:
    """Where a run stands when an attempt ends."""

    record: MigrationRecord          # as last written: source and (this attempt's) destination
    plan: dict[str, Any]             # the plan of this attempt (its JSON form)
    attempts: list[dict[str, Any]]   # one summary per attempt so far, this one included
    started: float                   # time.monotonic() when this engine began following the run
    final: dict[str, Any] | None = None    # this attempt's summary; None when it was never sent
    status: MigrationStatus | None = None  # the agent's last status of this attempt

    def result(self, final: dict[str, Any] | None = None) -> dict[str, Any]:
        final = final or self.final or {}
        return outcome.migration_result(final, self.plan, self.total_s(final), self.attempts)

    def total_s(self, final: dict[str, Any] | None) -> float:
        """Request to end by the record's creation time and the agent's timeline (kept across
        engine restarts), not by when this engine process began following the run."""
        total = total_seconds(_epoch(self.record.created_at), (final or {}).get("agent_timeline"), time.time())
        return time.monotonic() - self.started if total is None else total


def _epoch(when: datetime | None) -> float | None:
    if when is None:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def host_view(agent: AgentFactory, url: str | None, vm_uuid: str, *, ask_job: bool) -> HostView:
    """What one agent's libvirt says of the VM (ferry.engine.reconcile.HostView): VM.getStats,
    and on the source VM.getMigrationStatus. An agent that cannot be asked, or whose libvirt is
    away, is unreachable: it says nothing either way."""
    if url is None:
        return HostView.unreachable()
    stats = vm_stats(agent, url, vm_uuid)
    if stats is not None and stats.get("unreachable"):
        return HostView.unreachable()
    job = None
    if ask_job:
        try:
            job = MigrationStatus.from_wire(agent(url).call("VM.getMigrationStatus", {"vmID": vm_uuid})).state
        except JsonRpcError as exc:
            if exc.code == TRANSPORT_ERROR or exc.name == "libvirtUnavailable":
                return HostView.unreachable()
    return HostView(vm=None if stats is None else stats.get("status"), job=job)


Writing = Callable[[str], AbstractContextManager[Store]]


@dataclass(frozen=True)
class Endings:
    """The endings, over the orchestrator's database writes and its agent client factory."""

    db: Database
    writing: Writing     # a unit of work that wakes the record's long polls when it is done
    agent: AgentFactory

    def reconcile(self, run: MigrationRun, record: MigrationRecord, *, send_in_doubt: bool = False) -> Verdict:
        """Ask the source and destination agents what libvirt says; the pure decision."""
        with self.db.unit_of_work() as store:
            src = store.hosts.get(record.source).agent_url
            dst = store.hosts.get(record.destination).agent_url if record.destination else None
        return reconcile(host_view(self.agent, src, run.vm_uuid, ask_job=True),
                         host_view(self.agent, dst, run.vm_uuid, ask_job=False), send_in_doubt=send_in_doubt)

    def reconciled_status(self, run: MigrationRun, status: MigrationStatus, verdict: Verdict) -> MigrationStatus:
        """The attempt's final status as libvirt ended it: the agent's last figures and timeline
        (when it reported a job) with the state the verdict says."""
        base = run.last_status if status.state in (JobState.IDLE, JobState.UNKNOWN) and run.last_status else status
        if verdict.reality is Reality.ON_DESTINATION:
            return dataclasses.replace(base, state=JobState.SUCCEEDED, error=None,
                                       message=f"reconciled with libvirt: {verdict.reason}")
        told = status.error or status.message or f"agent state {status.state.value!r}"
        if status.state is JobState.FAILED and verdict.reality is Reality.ON_SOURCE:
            return status
        return dataclasses.replace(base, state=JobState.FAILED, error=f"{told}; libvirt: {verdict.reason}",
                                   message=f"reconciled with libvirt: {verdict.reason}")

    def succeeded(self, run: MigrationRun, ctx: RunContext, reconciled: Verdict | None = None) -> None:
        record = ctx.record
        result = ctx.result()
        if reconciled is not None:
            result["reconciled"] = {"reality": reconciled.reality.value, "reason": reconciled.reason}
        with run.state_lock, self.writing(run.migration_id) as store:
            store.migrations.update(run.migration_id, state=MigrationState.SUCCEEDED, progress=100, result=result,
                                    finished_at=now())
            store.vms.update(run.vm, host=record.destination, status=VmStatus.UP.value)
            sample = throughput_sample(ctx.plan, result)
            if sample is not None and record.source and record.destination:   # outlives the VM's records
                store.throughput.add(source=record.source, destination=record.destination,
                                     migration_id=run.migration_id, **sample)
            store.events.record_audit(audit.VM_MIGRATION_DONE, vm=run.vm, host=record.destination,
                                      migration_id=run.migration_id, source=record.source,
                                      destination=record.destination, **outcome.done_fields(result))
        log.info("migration %s: VM %s now runs on %s", run.migration_id, run.vm, record.destination)

    def cancelled(self, run: MigrationRun, ctx: RunContext) -> None:
        record = ctx.record
        final = ctx.final or {"destination": record.destination}
        result = outcome.migration_result(final, record.plan, ctx.total_s(final), ctx.attempts)
        with run.state_lock, self.writing(run.migration_id) as store:
            store.migrations.update(run.migration_id, state=MigrationState.CANCELLED, result=result,
                                    finished_at=now(),
                                    error=(ctx.final or {}).get("error") or "cancelled before it was sent")
            self._place_after_failure(store, run, record)
            store.events.record_audit(audit.VM_CANCEL_MIGRATION, vm=run.vm, host=record.source,
                                      migration_id=run.migration_id, source=record.source,
                                      user=run.cancelled_by or run.user)

    def aborted(self, run: MigrationRun, ctx: RunContext) -> None:
        record = ctx.record
        result = ctx.result()
        reason = "the convergence schedule gave up (the VM did not converge)"
        detail = outcome.failure_reason(ctx.status or MigrationStatus(JobState.UNKNOWN))
        with run.state_lock, self.writing(run.migration_id) as store:
            store.migrations.update(run.migration_id, state=MigrationState.ABORTED, result=result,
                                    finished_at=now(), error=f"{reason}: {detail}")
            self._place_after_failure(store, run, record)
            store.events.record_audit(audit.VM_MIGRATION_ABORT, vm=run.vm, host=record.source,
                                      migration_id=run.migration_id, source=record.source,
                                      destination=record.destination, reason=reason)

    def after_failure(self, run: MigrationRun, ctx: RunContext, tried: list[str], reason: str | None = None,
                      verdict: Verdict | None = None) -> tuple[MigrationRecord, dict[str, Any]] | None:
        """A failed attempt: rerun elsewhere (returns the new record and plan) or end FAILED (None).
        With the reconciliation's verdict, only a VM libvirt runs on the source with no job is
        tried elsewhere; without one (VM.migrate refused), the source's VM.getStats decides."""
        record, final = ctx.record, ctx.final or {}
        reason = reason or final.get("error") or "unknown error"
        retry = zerocopy_retry.retry_reason(ctx.plan.get("params") or {}, final.get("error") or reason)
        may_retry = verdict is None or verdict.may_rerun   # only a VM libvirt still runs on the source
        if retry is not None and may_retry and not run.cancel.is_set():   # issue 15 item 5: same host, no zero-copy
            return self._retry_without_zerocopy(run, record, ctx.plan, retry)
        if verdict is not None:
            on_source = verdict.may_rerun
            source_unreachable = verdict.reality in (Reality.UNKNOWN, Reality.BOTH)  # nothing says it left
        else:
            with self.db.unit_of_work() as store:
                source = store.hosts.get(record.source)
            stats = vm_stats(self.agent, source.agent_url, run.vm_uuid)
            on_source = outcome.vm_on_source((stats or {}).get("status"))
            source_unreachable = bool((stats or {}).get("unreachable"))
        decision = outcome.rerun_decision(tried=len(tried), vm_on_source=on_source,
                                          cancelled=run.cancel.is_set(), destination_given=run.to_given)
        if decision.rerun:
            rerun = self._rerun(run, record, tried, reason)
            if rerun is not None:
                return rerun
        elif decision.why_not:
            log.info("migration %s: no rerun: %s", run.migration_id, decision.why_not)
        result = ctx.result()
        result["no_rerun_because"] = decision.why_not
        if verdict is not None:
            result["reconciled"] = {"reality": verdict.reality.value, "reason": verdict.reason}
        with run.state_lock, self.writing(run.migration_id) as store:
            store.migrations.update(run.migration_id, state=MigrationState.FAILED, result=result,
                                    finished_at=now(), error=reason)
            self._place_after_failure(store, run, record, on_source=on_source or source_unreachable)
            store.events.record_audit(audit.VM_MIGRATION_FAILED, vm=run.vm, host=record.source,
                                      migration_id=run.migration_id, source=record.source, reason=reason)
        return None

    def _retry_without_zerocopy(self, run: MigrationRun, record: MigrationRecord, plan: dict[str, Any],
                                reason: str) -> tuple[MigrationRecord, dict[str, Any]]:
        new_plan = zerocopy_retry.plan_without_zerocopy(plan, reason)
        with self.writing(run.migration_id) as store:
            store.events.record_audit(audit.FERRY_ZEROCOPY_RETRY, vm=run.vm, host=record.source,
                                      migration_id=run.migration_id, destination=record.destination, reason=reason)
            new_record = store.migrations.update(run.migration_id, plan=new_plan, progress=0, figures=None)
        log.info("migration %s: retrying on %s without zero-copy: %s", run.migration_id, record.destination, reason)
        return new_record, new_plan

    def _rerun(self, run: MigrationRun, record: MigrationRecord, tried: list[str],
               reason: str) -> tuple[MigrationRecord, dict[str, Any]] | None:
        with self.writing(run.migration_id) as store:
            store.events.record_audit(audit.VM_MIGRATION_TRYING_RERUN, vm=run.vm, host=record.destination,
                                      migration_id=run.migration_id, destination=record.destination,
                                      reason=reason)
            try:
                plan = migration_service.plan_rerun(store, run.vm, tried=set(tried), policy=run.policy)
            except Conflict as exc:
                store.events.record_audit(audit.VM_MIGRATION_NO_VDS_TO_MIGRATE_TO, vm=run.vm,
                                          migration_id=run.migration_id, reason=str(exc).split(": ", 1)[-1])
                return None
            planned = plan.to_dict()
            if (record.plan or {}).get("measured"):     # the same guest: its pre-migration figures stand
                planned["measured"] = record.plan["measured"]
            new_record = store.migrations.update(run.migration_id, destination=plan.destination,
                                                 plan=planned, progress=0, figures=None)
        log.info("migration %s: rerun on %s after %s failed: %s", run.migration_id,
                 plan.destination, record.destination, reason)
        return new_record, planned

    def _place_after_failure(self, store: Store, run: MigrationRun, record: MigrationRecord,
                             on_source: bool | None = None) -> None:
        """The VM stays where it runs: on the source when its agent still has it (or cannot be
        asked: nothing says it left; the host monitor settles it), else wherever the
        destination's agent has it, else it is down."""
        if on_source is None:
            stats = vm_stats(self.agent, store.hosts.get(record.source).agent_url, run.vm_uuid)
            on_source = outcome.vm_on_source((stats or {}).get("status")) or bool((stats or {}).get("unreachable"))
        if on_source:
            store.vms.update(run.vm, host=record.source, status=VmStatus.UP.value)
            return
        dest = store.hosts.get(record.destination) if record.destination else None
        stats = vm_stats(self.agent, dest.agent_url, run.vm_uuid) if dest else None
        if dest is not None and (stats or {}).get("status") == "Up":
            store.vms.update(run.vm, host=dest.name, status=VmStatus.UP.value)
        else:
            store.vms.update(run.vm, host=None, status=VmStatus.DOWN.value)
