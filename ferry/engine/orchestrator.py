"""The orchestrator: runs migrations by driving the source host's agent, inside the engine.

A migration request is planned (ferry.engine.db.plan_inputs -> the pure planner), recorded
PENDING, and handed to a thread that:
1. records VM_MIGRATION_START and, when the planner changed what the admin set,
   FERRY_MIGRATION_PLAN_ADJUSTED (e.g. "zerocopy not sent: source host h1 reports ...");
2. sends VM.migrate with the plan's parameters to the source agent (RUNNING);
3. follows VM.getMigrationStatus, saving progress and figures: long-polled (the agent answers
   when the status changes, at least every second; ferry.engine.status_follow), or every
   `poll_interval` (>= 1 Hz) with an agent that does not know the long poll;
4. on success moves the VM to the destination (SUCCEEDED, VM_MIGRATION_DONE with duration,
   total and actual downtime); on failure with the VM still on the source, tries another host
   (VM_MIGRATION_TRYING_RERUN; hosts already tried are excluded; at most 3 hosts), and when
   none is left records VM_MIGRATION_NO_VDS_TO_MIGRATE_TO and VM_MIGRATION_FAILED; a cancel
   (VM.migrateCancel) ends CANCELLED with VM_CANCEL_MIGRATION; a convergence-schedule abort
   ends ABORTED with VM_MIGRATION_ABORT. The VM stays where the agent says it runs.
Several migrations run at once, one thread each; per-host limits travel in the plan
(incomingLimit/outgoingLimit) and the agents enforce them.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from ferry.common.errors import Conflict
from ferry.common.jsonrpc import TRANSPORT_ERROR, JsonRpcError
from ferry.engine import audit
from ferry.engine import migration_outcome as outcome
from ferry.engine.db import Database, Store
from ferry.engine.db.plan_inputs import pick_destination, plan_for_vm
from ferry.engine.db.records import HostStatus, MigrationRecord, VmStatus
from ferry.engine.migration_changes import MigrationChanges
from ferry.engine.monitor import AgentFactory, PlacementGuard, agent_client
from ferry.engine.status_follow import pause_before_next, status_request
from ferry.engine.vm_lifecycle import vm_stats
from ferry.protocol.status import JobState, MigrationStatus

log = logging.getLogger("ferry.engine.orchestrator")

DEFAULT_USER = "admin"
LOST_AGENT_TIMEOUT_S = 60.0   # the source agent unreachable this long during a migration -> failed


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Run:
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


class Orchestrator:
    def __init__(self, db: Database, *, guard: PlacementGuard | None = None, agent: AgentFactory = agent_client,
                 poll_interval: float = 0.5):
        if not 0 < poll_interval <= 1.0:
            raise ValueError("poll_interval must be in (0, 1] s: progress is followed at >= 1 Hz")
        self.db = db
        self.guard = guard or PlacementGuard()
        self.agent = agent
        self.poll_interval = poll_interval
        self._runs: dict[str, _Run] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.changes = MigrationChanges()   # REST long polls wait on it (GET /api/migrations/{id}/wait)

    # ---- life of the orchestrator --------------------------------------------------------------
    def start(self) -> None:
        """Pick up migrations a previous engine process left active: a RUNNING one is followed
        again (the agent kept migrating), a PENDING one was never sent and is failed."""
        with self.db.session() as session:
            store = Store(session)
            leftovers = store.list_migrations(active=True, limit=1000)
            for m in leftovers:
                if m.state == "PENDING":
                    store.update_migration(m.id, state="FAILED", finished_at=_now(),
                                           error="the engine stopped before the migration was sent")
        for m in leftovers:
            if m.state != "PENDING":
                log.info("migration %s of VM %s: following it again after an engine restart", m.id, m.vm)
                run = _Run(m.id, m.vm, to_given=True, policy=None, user=DEFAULT_USER, sent=True)
                self._spawn(run, resume=True)

    def stop(self) -> None:
        """Stop following (the agents go on migrating; a new engine process picks them up)."""
        self._stopping.set()
        for run in list(self._runs.values()):
            if run.thread is not None:
                run.thread.join(timeout=5)

    def active_runs(self) -> list[str]:
        with self._lock:
            return list(self._runs)

    @contextmanager
    def _writing(self, migration_id: str) -> Iterator[Session]:
        """A database session for writing a migration's record; once it is committed (or not),
        whoever long-polls the record is woken."""
        try:
            with self.db.session() as session:
                yield session
        finally:
            self.changes.bump(migration_id)

    # ---- requests ------------------------------------------------------------------------------
    def migrate(self, vm_ref: str, *, to: str | None = None, policy: str | None = None,
                user: str | None = None) -> MigrationRecord:
        """Plan and start a migration; returns its record (PENDING). Bad input names the field
        (`to`, `policy`); a VM that cannot migrate now is a Conflict saying why."""
        with self._lock:
            with self.db.session() as session:
                store = Store(session)
                vm = store.get_vm(vm_ref)
                busy = store.list_migrations(vm=vm.name, active=True)
                if busy:
                    raise Conflict(f"VM {vm.name!r} is already migrating (migration {busy[0].id})")
                if vm.status not in (VmStatus.UP, VmStatus.PAUSED):
                    raise Conflict(f"VM {vm.name!r} is {vm.status.value}; only a running VM can be migrated")
                plan = plan_for_vm(store, vm.name, to=to, policy=policy)
                source = store.get_host(plan.source)
                if source.status is HostStatus.DOWN:
                    raise Conflict(f"the VM's host {source.name!r} is DOWN (its agent does not answer)")
                record = store.create_migration(vm.name, source=plan.source, destination=plan.destination,
                                                plan=plan.to_dict(), state="PENDING")
                record = store.update_migration(record.id, attempts=[])
            run = _Run(record.id, vm.name, to_given=to is not None, policy=policy, user=user or DEFAULT_USER,
                       vm_uuid=vm.uuid)
            self._spawn(run)
        return record

    def cancel(self, migration_id: str, user: str | None = None) -> MigrationRecord:
        """Ask for the migration to stop; the VM stays on the source. Returns the record
        (CANCELLING until the agent confirms)."""
        with self._lock:
            run = self._runs.get(migration_id)
            with self.db.session() as session:
                record = Store(session).get_migration(migration_id)
            if not record.active:
                raise Conflict(f"migration {migration_id} already ended ({record.state})")
            if run is None:
                raise Conflict(f"migration {migration_id} is not followed by this engine")
            with run.state_lock:
                with self._writing(migration_id) as session:
                    store = Store(session)
                    record = store.get_migration(migration_id)
                    if not record.active:
                        raise Conflict(f"migration {migration_id} already ended ({record.state})")
                    run.cancelled_by = user or DEFAULT_USER
                    run.cancel.set()
                    record = store.update_migration(migration_id, state="CANCELLING")
            url, uuid, sent = run.source_url, run.vm_uuid, run.sent
        if sent and url and uuid:
            self._send_cancel(url, uuid)
        return record

    def _send_cancel(self, url: str, uuid: str) -> None:
        try:
            self.agent(url).call("VM.migrateCancel", {"vmID": uuid})
        except JsonRpcError as exc:
            if exc.name != "migCancelErr":  # already over: the follower sees how it ended
                log.warning("VM.migrateCancel on %s: %s", url, exc.message)

    # ---- the migration thread ------------------------------------------------------------------
    def _spawn(self, run: _Run, resume: bool = False) -> None:
        self._runs[run.migration_id] = run
        run.thread = threading.Thread(target=self._run_safely, args=(run, resume),
                                      name=f"migration-{run.vm}", daemon=True)
        run.thread.start()

    def _run_safely(self, run: _Run, resume: bool) -> None:
        try:
            with self.guard.busy(run.vm):
                self._run(run, resume)
        except _Stopping:
            log.info("migration %s of VM %s: no longer followed (engine stopping)", run.migration_id, run.vm)
        except Exception as exc:  # noqa: BLE001 - a migration must never be left RUNNING silently
            log.exception("migration %s of VM %s failed in the engine", run.migration_id, run.vm)
            try:
                with run.state_lock, self._writing(run.migration_id) as session:
                    Store(session).update_migration(run.migration_id, state="FAILED", finished_at=_now(),
                                                    error=f"engine error: {exc}")
            except Exception:  # noqa: BLE001
                log.exception("cannot record the failure of migration %s", run.migration_id)
        finally:
            with self._lock:
                self._runs.pop(run.migration_id, None)

    def _run(self, run: _Run, resume: bool) -> None:
        t0 = time.monotonic()
        with self.db.session() as session:
            store = Store(session)
            record = store.get_migration(run.migration_id)
            vm = store.get_vm(run.vm)
        run.vm_uuid = vm.uuid
        plan = record.plan or {}
        attempts: list[dict] = list(record.attempts or [])
        tried: list[str] = [a["destination"] for a in attempts]
        first = not resume
        while True:
            source, destination = record.source, record.destination
            if resume:
                resume = False
                with self.db.session() as session:
                    run.source_url = Store(session).get_host(source).agent_url
            else:
                if run.cancel.is_set():
                    self._end_cancelled(run, record, attempts, t0, None)
                    return
                sent_error = self._send(run, record, plan, first)
                first = False
                if sent_error is not None:
                    status = MigrationStatus(JobState.FAILED, error=sent_error,
                                             message=f"VM.migrate failed: {sent_error}")
                    final = self._attempt_done(run, attempts, status, destination)
                    next_step = self._after_failure(run, record, plan, attempts, tried + [destination], final, t0)
                    if next_step is None:
                        return
                    record, plan = next_step
                    tried.append(destination)
                    continue
            status = self._follow(run, record)
            final = self._attempt_done(run, attempts, status, destination)
            state = outcome.engine_state(status)
            if state == "SUCCEEDED":
                self._end_succeeded(run, record, plan, attempts, final, t0)
                return
            if state == "CANCELLED" or run.cancel.is_set():
                self._end_cancelled(run, record, attempts, t0, final)
                return
            if state == "ABORTED":
                self._end_aborted(run, record, plan, attempts, final, status, t0)
                return
            next_step = self._after_failure(run, record, plan, attempts, tried + [destination], final, t0,
                                            reason=outcome.failure_reason(status))
            if next_step is None:
                return
            record, plan = next_step
            tried.append(destination)

    def _send(self, run: _Run, record: MigrationRecord, plan: dict, first: bool) -> str | None:
        """Events, RUNNING, then VM.migrate on the source agent; returns an error text or None."""
        with run.state_lock, self._writing(run.migration_id) as session:
            store = Store(session)
            source = store.get_host(record.source)
            run.source_url = source.agent_url
            store.record_audit(audit.VM_MIGRATION_START, vm=run.vm, host=record.source,
                               migration_id=run.migration_id, source=record.source,
                               destination=record.destination, user=run.user)
            changes = outcome.adjustment_texts(plan.get("explanation") or [], source.capabilities)
            if changes and first:
                store.record_audit(audit.FERRY_MIGRATION_PLAN_ADJUSTED, vm=run.vm, host=record.source,
                                   migration_id=run.migration_id, changes="; ".join(changes))
            store.update_migration(run.migration_id, state="CANCELLING" if run.cancel.is_set() else "RUNNING",
                                   started_at=record.started_at or _now())
            store.update_vm(run.vm, status=VmStatus.MIGRATING.value)
        log.info("migration %s: VM %s %s -> %s params=%s", run.migration_id, run.vm, record.source,
                 record.destination, plan.get("params"))
        try:
            self.agent(source.agent_url).call("VM.migrate", {"vmID": run.vm_uuid, "params": plan.get("params", {})})
        except JsonRpcError as exc:
            return exc.message
        run.sent = True
        if run.cancel.is_set():  # cancelled while VM.migrate was on its way
            self._send_cancel(source.agent_url, run.vm_uuid)
        return None

    def _follow(self, run: _Run, record: MigrationRecord) -> MigrationStatus:
        """Poll the source agent until the migration ends; returns the final status."""
        client = self.agent(run.source_url)
        progress = 0
        last_ok = time.monotonic()
        last_figures: dict | None = None
        seen_version: int | None = None
        while True:
            if self._stopping.is_set():
                raise _Stopping()
            request = status_request(run.vm_uuid, seen_version)
            asked = request["waitForChange"]["version"]
            called = time.monotonic()
            try:
                status = MigrationStatus.from_wire(client.call("VM.getMigrationStatus", request))
                last_ok = time.monotonic()
            except JsonRpcError as exc:
                if exc.code != TRANSPORT_ERROR and exc.name == "noVM":
                    return MigrationStatus(JobState.FAILED, error="the VM vanished from the source host")
                if time.monotonic() - last_ok > LOST_AGENT_TIMEOUT_S:
                    return MigrationStatus(JobState.FAILED, error=f"lost contact with the source agent: {exc.message}")
                time.sleep(self.poll_interval)
                continue
            final = outcome.engine_state(status) is not None
            progress = outcome.progress_percent(status, progress)
            figures = outcome.figures_from_status(status)
            if figures != last_figures:
                last_figures = figures
                with self._writing(run.migration_id) as session:
                    Store(session).update_migration(run.migration_id, progress=progress, figures=figures)
            if final:
                return status
            seen_version = status.version
            pause = pause_before_next(status, asked, last_ok - called, self.poll_interval)
            if pause:
                time.sleep(pause)

    def _attempt_done(self, run: _Run, attempts: list[dict], status: MigrationStatus, destination: str) -> dict:
        final = outcome.attempt_summary(status, destination)
        attempts.append(final)
        with self._writing(run.migration_id) as session:
            Store(session).update_migration(run.migration_id, attempts=list(attempts))
        return final

    # ---- endings ---------------------------------------------------------------------------------
    def _end_succeeded(self, run, record, plan, attempts, final, t0) -> None:
        result = outcome.migration_result(final, plan, time.monotonic() - t0, attempts)
        with run.state_lock, self._writing(run.migration_id) as session:
            store = Store(session)
            store.update_migration(run.migration_id, state="SUCCEEDED", progress=100, result=result,
                                   finished_at=_now())
            store.update_vm(run.vm, host=record.destination, status=VmStatus.UP.value)
            store.record_audit(audit.VM_MIGRATION_DONE, vm=run.vm, host=record.destination,
                               migration_id=run.migration_id, source=record.source,
                               destination=record.destination, **outcome.done_fields(result))
        log.info("migration %s: VM %s now runs on %s", run.migration_id, run.vm, record.destination)

    def _end_cancelled(self, run, record, attempts, t0, final) -> None:
        result = outcome.migration_result(final or {"destination": record.destination}, record.plan,
                                          time.monotonic() - t0, attempts)
        with run.state_lock, self._writing(run.migration_id) as session:
            store = Store(session)
            store.update_migration(run.migration_id, state="CANCELLED", result=result, finished_at=_now(),
                                   error=(final or {}).get("error") or "cancelled before it was sent")
            self._place_after_failure(store, run, record)
            store.record_audit(audit.VM_CANCEL_MIGRATION, vm=run.vm, host=record.source,
                               migration_id=run.migration_id, source=record.source,
                               user=run.cancelled_by or run.user)

    def _end_aborted(self, run, record, plan, attempts, final, status, t0) -> None:
        result = outcome.migration_result(final, plan, time.monotonic() - t0, attempts)
        reason = "the convergence schedule gave up (the VM did not converge)"
        detail = outcome.failure_reason(status)
        with run.state_lock, self._writing(run.migration_id) as session:
            store = Store(session)
            store.update_migration(run.migration_id, state="ABORTED", result=result, finished_at=_now(),
                                   error=f"{reason}: {detail}")
            self._place_after_failure(store, run, record)
            store.record_audit(audit.VM_MIGRATION_ABORT, vm=run.vm, host=record.source,
                               migration_id=run.migration_id, source=record.source,
                               destination=record.destination, reason=reason)

    def _after_failure(self, run, record, plan, attempts, tried, final, t0, reason: str | None = None):
        """A failed attempt: rerun elsewhere (returns the new record and plan) or end FAILED (None)."""
        reason = reason or final.get("error") or "unknown error"
        with self.db.session() as session:
            source = Store(session).get_host(record.source)
        stats = vm_stats(self.agent, source.agent_url, run.vm_uuid)
        on_source = outcome.vm_on_source((stats or {}).get("status"))
        source_unreachable = bool((stats or {}).get("unreachable"))
        decision = outcome.rerun_decision(tried=len(tried), vm_on_source=on_source,
                                          cancelled=run.cancel.is_set(), destination_given=run.to_given)
        if decision.rerun:
            with self._writing(run.migration_id) as session:
                store = Store(session)
                store.record_audit(audit.VM_MIGRATION_TRYING_RERUN, vm=run.vm, host=record.destination,
                                   migration_id=run.migration_id, destination=record.destination, reason=reason)
                try:
                    vm = store.get_vm(run.vm)
                    nxt = pick_destination(store, vm, exclude=set(tried))
                    new_plan = plan_for_vm(store, run.vm, to=nxt.name, policy=run.policy)
                except Conflict as exc:
                    store.record_audit(audit.VM_MIGRATION_NO_VDS_TO_MIGRATE_TO, vm=run.vm,
                                       migration_id=run.migration_id, reason=str(exc).split(": ", 1)[-1])
                    new_plan = None
                if new_plan is not None:
                    new_record = store.update_migration(run.migration_id, destination=new_plan.destination,
                                                        plan=new_plan.to_dict(), progress=0, figures=None)
                    log.info("migration %s: rerun on %s after %s failed: %s", run.migration_id,
                             new_plan.destination, record.destination, reason)
                    return new_record, new_plan.to_dict()
        elif decision.why_not:
            log.info("migration %s: no rerun: %s", run.migration_id, decision.why_not)
        result = outcome.migration_result(final, plan, time.monotonic() - t0, attempts)
        result["no_rerun_because"] = decision.why_not
        with run.state_lock, self._writing(run.migration_id) as session:
            store = Store(session)
            store.update_migration(run.migration_id, state="FAILED", result=result, finished_at=_now(),
                                   error=reason)
            self._place_after_failure(store, run, record, on_source=on_source or source_unreachable)
            store.record_audit(audit.VM_MIGRATION_FAILED, vm=run.vm, host=record.source,
                               migration_id=run.migration_id, source=record.source, reason=reason)
        return None

    def _place_after_failure(self, store: Store, run: _Run, record: MigrationRecord,
                             on_source: bool | None = None) -> None:
        """The VM stays where it runs: on the source when its agent still has it (or cannot be
        asked: nothing says it left; the host monitor settles it), else wherever the
        destination's agent has it, else it is down."""
        if on_source is None:
            stats = vm_stats(self.agent, store.get_host(record.source).agent_url, run.vm_uuid)
            on_source = outcome.vm_on_source((stats or {}).get("status")) or bool((stats or {}).get("unreachable"))
        if on_source:
            store.update_vm(run.vm, host=record.source, status=VmStatus.UP.value)
            return
        dest = store.get_host(record.destination) if record.destination else None
        stats = vm_stats(self.agent, dest.agent_url, run.vm_uuid) if dest else None
        if dest is not None and (stats or {}).get("status") == "Up":
            store.update_vm(run.vm, host=dest.name, status=VmStatus.UP.value)
        else:
            store.update_vm(run.vm, host=None, status=VmStatus.DOWN.value)


class _Stopping(Exception):
    """The engine is shutting down: stop following, leave the record RUNNING for the next one."""

