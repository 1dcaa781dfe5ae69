"""The orchestrator: runs migrations by driving the source host's agent, inside the engine.

A migration request is accepted (ferry.engine.services.migrations: checks, the plan, a PENDING
record), and handed to a thread that:
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
With several engines on one PostgreSQL (ferry.engine.ownership) each migration has a lease: the
thread acts only while this engine holds it (VM.migrate only after confirming it in the
database), stops when it is lost, and an engine takes over the expired leases of another and
follows those migrations as after a restart: it asks the agents, it never sends VM.migrate again.
Every write to a migration's record is fenced by its lease (ownership.fence: same owner, same
epoch, in the writing transaction): an engine paused past its ttl cannot overwrite what the new
owner wrote, and stops following. A cancel asked of an engine that does not follow the
migration is handed to the one that does through the database (ferry.engine.cancel_requests).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ferry.common.errors import Conflict
from ferry.common.jsonrpc import TRANSPORT_ERROR, JsonRpcError
from ferry.engine import audit
from ferry.engine import migration_outcome as outcome
from ferry.engine.cancel_requests import CancelRequests
from ferry.engine.db import Database, Store
from ferry.engine.db.records import MigrationRecord, MigrationState, VmStatus
from ferry.engine.lease_rules import MIGRATION, TakeoverStep, send_doubt_left, takeover_step
from ferry.engine.migration_changes import MigrationChanges
from ferry.engine.migration_endings import Endings, MigrationRun, RunContext
from ferry.engine.migration_endings import now as _now
from ferry.engine.monitor import AgentFactory, PlacementGuard, agent_client
from ferry.engine.ownership import Fenced, Ownership, SoleOwner
from ferry.engine.reconcile import Reality, Verdict
from ferry.engine.services import migrations as migration_service
from ferry.engine.status_follow import pause_before_next, status_request
from ferry.protocol.status import JobState, MigrationStatus

log = logging.getLogger("ferry.engine.orchestrator")

DEFAULT_USER = "admin"
LOST_AGENT_TIMEOUT_S = 10.0   # the source agent silent this long: ask libvirt on both hosts (ferry.engine.reconcile)
SEND_DOUBT_S = 30.0           # a VM.migrate with no answer may still start this long after
RECONCILE_PAUSE_S = 2.0       # between two asks while libvirt's answer is UNKNOWN
SETTLE_LIMIT_S = 900.0        # UNKNOWN this long: FAILED with no rerun (the host monitor places the VM)
_IN_DOUBT = object()          # _send's answer for a VM.migrate whose answer never came


class Orchestrator:
    def __init__(self, db: Database, *, guard: PlacementGuard | None = None, agent: AgentFactory = agent_client,
                 poll_interval: float = 0.5, ownership: SoleOwner | Ownership | None = None):
        if not 0 < poll_interval <= 1.0:
            raise ValueError("poll_interval must be in (0, 1] s: progress is followed at >= 1 Hz")
        self.db = db
        self.guard = guard or PlacementGuard()
        self.agent = agent
        self.poll_interval = poll_interval
        self._runs: dict[str, MigrationRun] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.changes = MigrationChanges()   # REST long polls wait on it (GET /api/migrations/{id}/wait)
        self.endings = Endings(db, self._writing, agent)
        self.ownership = ownership or SoleOwner()
        self.ownership.on_takeover(self.take_over)
        self.requests = CancelRequests(self)   # cancels asked of other engines, for the ones this engine follows

    # ---- life of the orchestrator --------------------------------------------------------------
    def start(self) -> None:
        """Pick up migrations a previous engine process left active: a RUNNING one is followed
        again (the agent kept migrating), a PENDING one was never sent and is failed. With
        several engines, only those whose lease this engine gets (free, expired or its own)."""
        with self.db.unit_of_work() as store:
            leftovers = [m.id for m in store.migrations.list(active=True, limit=1000)]
        if self.ownership.shared:
            leftovers = [i for i in leftovers if self.ownership.claim(MIGRATION, i).granted]
        self._adopt(leftovers, "after an engine restart")
        self.requests.start()

    def take_over(self) -> None:
        """The heartbeat's scan: claim the migrations whose lease another engine let expire and
        follow them (ferry.engine.lease_rules.takeover_step says what comes first)."""
        if self._stopping.is_set():
            return
        with self.db.unit_of_work() as store:
            active = [m.id for m in store.migrations.list(active=True, limit=1000)]
        with self._lock:
            active = [i for i in active if i not in self._runs]
        taken = [i for i in self.ownership.claimable(MIGRATION, active)
                 if self.ownership.claim(MIGRATION, i).granted]
        self._adopt(taken, "taken over from another engine")

    def _adopt(self, migration_ids: list[str], why: str) -> None:
        for migration_id in migration_ids:
            with self._lock, self.db.unit_of_work() as store:
                try:
                    self.ownership.fence(store, MIGRATION, migration_id)
                except Fenced:
                    continue                              # lost again at once: the new owner adopts it
                m = store.migrations.get(migration_id)    # as it is now that the lease is ours
                step = takeover_step(m.state.value)
                if step is TakeoverStep.FAIL_UNSENT:
                    store.migrations.update(m.id, state=MigrationState.FAILED, finished_at=_now(),
                                            error="the engine stopped before the migration was sent")
                elif step is TakeoverStep.FOLLOW and m.id not in self._runs:
                    if m.state is MigrationState.CANCELLING:   # its migrateCancel may never have gone out
                        store.migrations.request_cancel(m.id, DEFAULT_USER)
                    log.info("migration %s of VM %s: following it again %s", m.id, m.vm, why)
                    self._spawn(MigrationRun(m.id, m.vm, to_given=True, policy=None, user=DEFAULT_USER, sent=True),
                                resume=True)
                    continue
            if step is not TakeoverStep.FOLLOW:
                self.changes.bump(migration_id)
                self.ownership.release(MIGRATION, migration_id)

    def begin_stop(self) -> None:
        """SIGTERM: from now on no new action -- no VM.migrate, no rerun, no cancel, no new
        request; the threads stop following at their next step and leave the records for the
        next engine process, which reconciles them with libvirt (`start`)."""
        if not self._stopping.is_set():
            log.info("engine stopping: no new migration action from now on")
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        """Stop following (the agents go on migrating; a new engine process picks them up)."""
        self.begin_stop()
        self.requests.stop()
        for run in list(self._runs.values()):
            if run.thread is not None:
                run.thread.join(timeout=5)

    def active_runs(self) -> list[str]:
        with self._lock:
            return list(self._runs)

    @contextmanager
    def _writing(self, migration_id: str) -> Iterator[Store]:
        """A unit of work that writes a migration's record, fenced by its lease (Fenced when this
        engine no longer owns it at its epoch: nothing is written); once it is committed (or
        not), whoever long-polls the record is woken."""
        try:
            with self.db.unit_of_work() as store:
                self.ownership.fence(store, MIGRATION, migration_id)
                yield store
        finally:
            self.changes.bump(migration_id)

    # ---- requests ------------------------------------------------------------------------------
    def migrate(self, vm_ref: str, *, to: str | None = None, policy: str | None = None,
                user: str | None = None) -> MigrationRecord:
        """Plan and start a migration; returns its record (PENDING). Bad input names the field
        (`to`, `policy`); a VM that cannot migrate now is a Conflict saying why."""
        self._refuse_when_stopping()
        with self._lock:
            with self.db.unit_of_work() as store:
                vm, record = migration_service.accept(store, vm_ref, to=to, policy=policy)
                self.ownership.take_new(store, MIGRATION, record.id)
            run = MigrationRun(record.id, vm.name, to_given=to is not None, policy=policy, user=user or DEFAULT_USER,
                       vm_uuid=vm.uuid)
            self._spawn(run)
        return record

    def cancel(self, migration_id: str, user: str | None = None, *, wait: bool = True,
               requested: bool = False) -> MigrationRecord:
        """Ask for the migration to stop; the VM stays on the source. Returns the record
        (CANCELLING until the agent confirms). A migration another engine follows: the request
        goes to it through the database and, with `wait`, the record is returned once that
        engine (or the one that takes it over) has acted (ferry.engine.cancel_requests)."""
        self._refuse_when_stopping()
        with self._lock:
            run = self._runs.get(migration_id)
            with self.db.unit_of_work() as store:
                migration_service.still_active(store, migration_id)
            if run is None and not self.ownership.shared:
                raise Conflict(f"migration {migration_id} is not followed by this engine")
        if run is None and requested:
            raise Fenced(f"migration {migration_id}: no longer followed here")
        if run is None:
            return self.requests.forward(migration_id, user or DEFAULT_USER, wait=wait)
        with self._lock:
            with run.state_lock:
                with self._writing(migration_id) as store:
                    record = migration_service.mark_cancelling(store, migration_id)
                    if requested:
                        store.migrations.clear_cancel_request(migration_id)
                    run.cancelled_by = user or DEFAULT_USER
                    run.cancel.set()
            url, uuid, sent = run.source_url, run.vm_uuid, run.sent
        if sent and url and uuid:
            self._send_cancel(url, uuid)
        return record

    def _refuse_when_stopping(self) -> None:
        if self._stopping.is_set():
            raise Conflict("the engine is shutting down: it takes no new migration action "
                           "(the next engine process follows what is in flight)")

    def _send_cancel(self, url: str, uuid: str) -> None:
        try:
            self.agent(url).call("VM.migrateCancel", {"vmID": uuid})
        except JsonRpcError as exc:
            if exc.name != "migCancelErr":  # already over: the follower sees how it ended
                log.warning("VM.migrateCancel on %s: %s", url, exc.message)

    # ---- the migration thread ------------------------------------------------------------------
    def _spawn(self, run: MigrationRun, resume: bool = False) -> None:
        self._runs[run.migration_id] = run
        run.thread = threading.Thread(target=self._run_safely, args=(run, resume),
                                      name=f"migration-{run.vm}", daemon=True)
        run.thread.start()

    def _run_safely(self, run: MigrationRun, resume: bool) -> None:
        try:
            with self.guard.busy(run.vm):
                self._run(run, resume)
        except _Stopping as why:
            log.info("migration %s of VM %s: no longer followed (%s)", run.migration_id, run.vm, why)
        except Fenced as why:
            log.warning("migration %s of VM %s: no longer followed, its write was fenced (%s)",
                        run.migration_id, run.vm, why)
        except Exception as exc:  # noqa: BLE001 - a migration must never be left RUNNING silently
            log.exception("migration %s of VM %s failed in the engine", run.migration_id, run.vm)
            try:
                with run.state_lock, self._writing(run.migration_id) as store:
                    store.migrations.update(run.migration_id, state=MigrationState.FAILED, finished_at=_now(),
                                            error=f"engine error: {exc}")
            except Fenced as why:
                log.warning("migration %s: its failure not recorded here, fenced (%s)", run.migration_id, why)
            except Exception:  # noqa: BLE001
                log.exception("cannot record the failure of migration %s", run.migration_id)
        finally:
            with self._lock:
                self._runs.pop(run.migration_id, None)
            self.ownership.release(MIGRATION, run.migration_id)   # ended, or let go for another engine

    def _run(self, run: MigrationRun, resume: bool) -> None:
        t0 = time.monotonic()
        with self.db.unit_of_work() as store:
            record = store.migrations.get(run.migration_id)
            vm = store.vms.get(run.vm)
        run.vm_uuid = vm.uuid
        plan = record.plan or {}
        attempts: list[dict] = list(record.attempts or [])
        tried: list[str] = [a["destination"] for a in attempts]
        first = not resume
        while True:
            source, destination = record.source, record.destination
            doubt_until = 0.0     # while a VM.migrate whose answer never came may still start
            if resume:
                resume = False
                with self.db.unit_of_work() as store:
                    run.source_url = store.hosts.get(source).agent_url
                # the previous owner's VM.migrate may still start a job: not "never sent" yet
                doubt_until = time.monotonic() + send_doubt_left(record.started_at, _now(), SEND_DOUBT_S)
            else:
                if run.cancel.is_set():
                    self.endings.cancelled(run, RunContext(record, plan, attempts, t0))
                    return
                sent_error = self._send(run, record, plan, first)
                first = False
                if sent_error is _IN_DOUBT:
                    doubt_until = time.monotonic() + SEND_DOUBT_S
                elif sent_error is not None:
                    status = MigrationStatus(JobState.FAILED, error=sent_error,
                                             message=f"VM.migrate failed: {sent_error}")
                    final = self._attempt_done(run, attempts, status, destination)
                    ctx = RunContext(record, plan, attempts, t0, final, status)
                    self._check_acting(run)
                    next_step = self.endings.after_failure(run, ctx, tried + [destination])
                    if next_step is None:
                        return
                    record, plan = next_step
                    tried.append(destination)
                    continue
            status, verdict = self._follow_until_settled(run, record, doubt_until)
            final = self._attempt_done(run, attempts, status, destination)
            ctx = RunContext(record, plan, attempts, t0, final, status)
            state = outcome.engine_state(status)
            if state == MigrationState.SUCCEEDED:
                self.endings.succeeded(run, ctx, reconciled=verdict)
                return
            if state == MigrationState.CANCELLED or (run.cancel.is_set() and (verdict is None or verdict.may_rerun)):
                self.endings.cancelled(run, ctx)
                return
            if state == MigrationState.ABORTED:
                self.endings.aborted(run, ctx)
                return
            self._check_acting(run)      # no new action while shutting down: the next engine decides
            next_step = self.endings.after_failure(run, ctx, tried + [destination],
                                                   reason=outcome.failure_reason(status), verdict=verdict)
            if next_step is None:
                return
            record, plan = next_step
            tried.append(destination)

    def _send(self, run: MigrationRun, record: MigrationRecord, plan: dict, first: bool) -> str | object | None:
        """Events, RUNNING, then VM.migrate on the source agent; returns None when the agent took
        it, _IN_DOUBT when its answer never came (it may run it: never "not sent"), else the
        agent's refusal."""
        self._check_acting(run)
        if not self.ownership.confirm(MIGRATION, run.migration_id):   # never sent by two engines
            raise _Stopping("the migration's lease is no longer this engine's: not sending VM.migrate")
        with run.state_lock, self._writing(run.migration_id) as store:
            source = store.hosts.get(record.source)
            run.source_url = source.agent_url
            store.events.record_audit(audit.VM_MIGRATION_START, vm=run.vm, host=record.source,
                               migration_id=run.migration_id, source=record.source,
                               destination=record.destination, user=run.user)
            changes = outcome.adjustment_texts(plan.get("explanation") or [], source.capabilities)
            if changes and first:
                store.events.record_audit(audit.FERRY_MIGRATION_PLAN_ADJUSTED, vm=run.vm, host=record.source,
                                   migration_id=run.migration_id, changes="; ".join(changes))
            state = MigrationState.CANCELLING if run.cancel.is_set() else MigrationState.RUNNING
            store.migrations.update(run.migration_id, state=state, started_at=record.started_at or _now())
            store.vms.update(run.vm, status=VmStatus.MIGRATING.value)
        log.info("migration %s: VM %s %s -> %s params=%s", run.migration_id, run.vm, record.source,
                 record.destination, plan.get("params"))
        try:
            self.agent(source.agent_url).call("VM.migrate", {"vmID": run.vm_uuid, "params": plan.get("params", {})})
        except JsonRpcError as exc:
            if exc.code != TRANSPORT_ERROR:
                return exc.message
            log.warning("migration %s: VM.migrate on %s got no answer (%s): its fate is unknown, asking libvirt",
                        run.migration_id, record.source, exc.message)
            run.sent = True
            return _IN_DOUBT
        run.sent = True
        if run.cancel.is_set():  # cancelled while VM.migrate was on its way
            self._send_cancel(source.agent_url, run.vm_uuid)
        return None

    def _follow_until_settled(self, run: MigrationRun, record: MigrationRecord,
                              doubt_until: float) -> tuple[MigrationStatus, Verdict | None]:
        """Follow the source's job to its end. An end the agent itself reports (succeeded,
        cancelled, aborted) is taken as it is; anything else -- failed, "no migration", the VM
        gone, the agent silent -- is checked against libvirt on both hosts first
        (ferry.engine.reconcile): a job still running is followed again, and the status
        returned says how it really ended, with the verdict that settled it."""
        while True:
            status = self._follow(run, record)
            if status.state in (JobState.SUCCEEDED, JobState.CANCELLED, JobState.ABORTED):
                return status, None
            verdict = self._settle(run, record, doubt_until)
            if verdict.reality is Reality.MIGRATING:
                log.info("migration %s: %s: following it again", run.migration_id, verdict.reason)
                continue
            return self.endings.reconciled_status(run, status, verdict), verdict

    def _settle(self, run: MigrationRun, record: MigrationRecord, doubt_until: float) -> Verdict:
        """Ask both agents what libvirt says until the answer is not UNKNOWN (or SETTLE_LIMIT_S
        passes: then UNKNOWN, and the attempt ends FAILED with no rerun)."""
        started = time.monotonic()
        while True:
            verdict = self.endings.reconcile(run, record, send_in_doubt=time.monotonic() < doubt_until)
            log.info("migration %s: reconciled with libvirt: %s (%s)", run.migration_id, verdict.reality.value,
                     verdict.reason)
            if verdict.reality is not Reality.UNKNOWN or time.monotonic() - started > SETTLE_LIMIT_S:
                return verdict
            if self._stopping.wait(RECONCILE_PAUSE_S):
                raise _Stopping("engine stopping")
            self._check_acting(run)

    def _follow(self, run: MigrationRun, record: MigrationRecord) -> MigrationStatus:
        """Poll the source agent until its job ends or the agent can no longer say (it lost the
        job, the VM left it, or it has not answered for LOST_AGENT_TIMEOUT_S); returns the last
        status, which the caller reconciles unless the agent reported a clean end."""
        client = self.agent(run.source_url)
        progress = 0
        last_ok = time.monotonic()
        last_figures: dict | None = None
        seen_version: int | None = None
        while True:
            self._check_acting(run)
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
                    return MigrationStatus(JobState.UNKNOWN, error=f"lost contact with the source agent: {exc.message}")
                time.sleep(self.poll_interval)
                continue
            if status.state.active or status.state.final:
                run.last_status = status
            final = outcome.engine_state(status) is not None
            progress = outcome.progress_percent(status, progress)
            figures = outcome.with_pass_start(outcome.figures_from_status(status), last_figures)
            if figures != last_figures and status.state is not JobState.IDLE:
                last_figures = figures
                with self._writing(run.migration_id) as store:
                    store.migrations.update(run.migration_id, progress=progress, figures=figures)
            if final:
                return status
            seen_version = status.version
            pause = pause_before_next(status, asked, last_ok - called, self.poll_interval)
            if pause:
                time.sleep(pause)

    def _attempt_done(self, run: MigrationRun, attempts: list[dict], status: MigrationStatus, destination: str) -> dict:
        final = outcome.attempt_summary(status, destination)
        attempts.append(final)
        with self._writing(run.migration_id) as store:
            store.migrations.update(run.migration_id, attempts=list(attempts))
        return final


    def _check_acting(self, run: MigrationRun) -> None:
        """Raise _Stopping when this engine may no longer act on the run: it is shutting down,
        or the migration's lease is gone (another engine follows it now)."""
        if self._stopping.is_set():
            raise _Stopping("engine stopping")
        if not self.ownership.holds(MIGRATION, run.migration_id):
            raise _Stopping("its lease was lost: another engine follows it")


class _Stopping(Exception):
    """Stop following, leave the record RUNNING for the next owner: the engine is shutting
    down, or the migration's lease is no longer this engine's."""

