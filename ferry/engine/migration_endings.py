"""How a migration run ends, and what the orchestrator keeps of a run while it lasts.

One function per ending (succeeded, cancelled, aborted, failed-or-rerun), each writing the
record, placing the VM where the agents say it runs, and recording oVirt's audit event. They
take the run (`MigrationRun`) and where it stands (`RunContext`) rather than loose values.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ferry.common.errors import Conflict
from ferry.engine import audit
from ferry.engine import migration_outcome as outcome
from ferry.engine.db import Database, Store
from ferry.engine.db.records import MigrationRecord, MigrationState, VmStatus
from ferry.engine.monitor import AgentFactory
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
        return outcome.migration_result(final or self.final, self.plan, time.monotonic() - self.started,
                                        self.attempts)


Writing = Callable[[str], AbstractContextManager[Store]]


@dataclass(frozen=True)
class Endings:
    """The endings, over the orchestrator's database writes and its agent client factory."""

    db: Database
    writing: Writing     # a unit of work that wakes the record's long polls when it is done
    agent: AgentFactory

    def succeeded(self, run: MigrationRun, ctx: RunContext) -> None:
        record = ctx.record
        result = ctx.result()
        with run.state_lock, self.writing(run.migration_id) as store:
            store.migrations.update(run.migration_id, state=MigrationState.SUCCEEDED, progress=100, result=result,
                                    finished_at=now())
            store.vms.update(run.vm, host=record.destination, status=VmStatus.UP.value)
            store.events.record_audit(audit.VM_MIGRATION_DONE, vm=run.vm, host=record.destination,
                                      migration_id=run.migration_id, source=record.source,
                                      destination=record.destination, **outcome.done_fields(result))
        log.info("migration %s: VM %s now runs on %s", run.migration_id, run.vm, record.destination)

    def cancelled(self, run: MigrationRun, ctx: RunContext) -> None:
        record = ctx.record
        result = outcome.migration_result(ctx.final or {"destination": record.destination}, record.plan,
                                          time.monotonic() - ctx.started, ctx.attempts)
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

    def after_failure(self, run: MigrationRun, ctx: RunContext, tried: list[str],
                      reason: str | None = None) -> tuple[MigrationRecord, dict[str, Any]] | None:
        """A failed attempt: rerun elsewhere (returns the new record and plan) or end FAILED (None)."""
        record, final = ctx.record, ctx.final or {}
        reason = reason or final.get("error") or "unknown error"
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
        with run.state_lock, self.writing(run.migration_id) as store:
            store.migrations.update(run.migration_id, state=MigrationState.FAILED, result=result,
                                    finished_at=now(), error=reason)
            self._place_after_failure(store, run, record, on_source=on_source or source_unreachable)
            store.events.record_audit(audit.VM_MIGRATION_FAILED, vm=run.vm, host=record.source,
                                      migration_id=run.migration_id, source=record.source, reason=reason)
        return None

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
            new_record = store.migrations.update(run.migration_id, destination=plan.destination,
                                                 plan=plan.to_dict(), progress=0, figures=None)
        log.info("migration %s: rerun on %s after %s failed: %s", run.migration_id,
                 plan.destination, record.destination, reason)
        return new_record, plan.to_dict()

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
