"""The source side of one outgoing migration: a thread from VM.migrate to the final status.

Steps: take an outgoing slot; ask the destination agent to expect the VM (VM.migrationCreate,
retried every `retry_interval` s while it answers migrateLimit, until cancelled); build flags
(`ferry.protocol.flags`); start virDomainMigrateToURI3; meanwhile a monitor thread runs the
convergence schedule from libvirt's migration-iteration events (also from the iteration seen in
job-stats polls, whichever comes first) and polls job stats every `status_interval` s for
progress. A failed or cancelled migration leaves the VM running here and asks the destination to
drop whatever it prepared; the status keeps libvirt's message.

States (`ferry.protocol.status.JobState`): pending -> waiting (destination busy) -> running ->
succeeded | failed | cancelled | aborted (the schedule's abort action).
"""
from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from ferry.agent import libvirt_edge
from ferry.agent.adaptive import AdaptiveController
from ferry.agent.hard_limits import HardLimits, LowMark, Verdict
from ferry.agent.migration_watch import MigrationWatch, _msg
from ferry.agent.progress import JobFigures, figures_from_job_stats, progress_percent
from ferry.agent.schedule import ScheduleRunner
from ferry.common.change_counter import ChangeCounter
from ferry.common.jsonrpc import JsonRpcError
from ferry.protocol.flags import PARAM_DEST_XML, MigrationFlags, build_migration_flags
from ferry.protocol.migrate_params import MigrateParams
from ferry.protocol.schedule import ABORT, POSTCOPY, SET_DOWNTIME, Action, Schedule
from ferry.protocol.status import OUTGOING, JobState, MigrationStatus

log = logging.getLogger("ferry.agent.migration")

PAUSED_FLAG = "VIR_MIGRATE_PAUSED"   # leave the domain suspended on the destination
COMPLETED_EVENT_WAIT_S = 2.0   # how long a finished migrateToURI3 waits for libvirt's JOB_COMPLETED


class MigrationJob(MigrationWatch):
    def __init__(self, *, vm_id: str, vm_name: str, dom, lv, events, params: MigrateParams,
                 unrecognized: tuple[str, ...], slots, destination: Callable[[str], Any],
                 zerocopy_available: bool, libvirt_transport: str, status_interval: float = 1.0,
                 retry_interval: float = 10.0, on_finished: Callable[[MigrationJob], None] | None = None,
                 hard_limits: HardLimits = HardLimits(0, 0), memory_mib: int = 0,
                 qemu_version: int | None = None, monitor_command: Callable[[Any, dict], Any] | None = None):
        self.vm_id = vm_id
        self.vm_name = vm_name
        self.dom = dom
        self.lv = lv
        self.events = events
        self.params = params
        self.unrecognized = unrecognized
        self.slots = slots
        self.destination = destination          # dst -> JSON-RPC client of the destination agent
        self.zerocopy_available = zerocopy_available
        self.libvirt_transport = libvirt_transport
        self.status_interval = status_interval
        self.retry_interval = retry_interval
        self.on_finished = on_finished
        self.hard_limits = hard_limits
        self.memory_mib = memory_mib
        self._low_mark = LowMark()
        self._limit_verdict: Verdict | None = None   # set when a hard limit aborted the job
        self.qemu_version = qemu_version
        self.monitor_command = monitor_command      # QEMU monitor channel (live throttle), if any
        self.adaptive: AdaptiveController | None = None   # set once the flags are known
        self.missed_zero_copy: int | None = None    # QEMU's dirty-sync-missed-zero-copy (QMP)
        self._qmp_stats = True                      # False once the monitor failed: not asked again
        self.postcopy_downtime_ms: int | None = None  # QEMU's switch-over pause into post-copy (QMP)
        self._qmp_postcopy = True
        self.throttle_pct_max: int | None = None     # the highest auto-converge throttle QEMU reported
        self._adaptive_abort: str | None = None

        # Adaptive convergence decides itself; its schedule is only the older agents' fallback.
        self.schedule = params.effective_schedule() if params.adaptive is None else Schedule()
        self.runner = ScheduleRunner(self.schedule)
        self.flags: MigrationFlags | None = None
        self._lock = threading.RLock()
        self._cancel = threading.Event()
        self._done = threading.Event()
        self._iterations: queue.Queue = queue.Queue()
        self._completed_stats: dict | None = None
        self._last_stats: dict = {}
        self._completed = threading.Event()
        self.version = ChangeCounter()     # bumped after every change status() shows
        self._aborted_by_schedule = False
        self._postcopy = False
        self._slot_taken = False

        self.state = JobState.PENDING
        self.message = "Migration in progress"
        self.error: str | None = None
        self.progress = 0
        self.figures = JobFigures()
        self.max_downtime_ms: int | None = None
        self.actions_run: list[dict] = []
        self.started_at = time.time()
        self.migration_started_at: float | None = None
        self.migration_returned_at: float | None = None
        self.ended_at: float | None = None
        self.thread = threading.Thread(target=self._run, name=f"migration-{vm_name}", daemon=True)

    # ---- public --------------------------------------------------------------------------------

    def start(self) -> None:
        self.thread.start()

    @property
    def active(self) -> bool:
        return not self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def wait_for_change(self, seen_version: int, timeout: float) -> MigrationStatus:
        """The status once its version differs from `seen_version`, or after `timeout` s."""
        self.version.wait_past(seen_version, timeout)
        return self.status()

    def cancel(self) -> None:
        """Stops a waiting migration or aborts the running libvirt job."""
        self._cancel.set()
        with self._lock:
            running = self.state == JobState.RUNNING
        if running:
            try:
                self.dom.abortJob()
            except self.lv.libvirtError as exc:
                log.warning("VM %s: abortJob during cancel: %s", self.vm_name, _msg(exc))

    def change_max_bandwidth(self, mibs: int) -> None:
        t0 = time.monotonic()
        try:
            self.dom.migrateSetMaxSpeed(mibs, 0)
        except self.lv.libvirtError as exc:
            log.warning("VM %s: setting migration bandwidth to %d MiB/s: %s", self.vm_name, mibs, _msg(exc))
            raise
        log.info("VM %s: migration bandwidth set to %d MiB/s (libvirt took %.3f s)", self.vm_name, mibs,
                 time.monotonic() - t0)

    def status(self) -> MigrationStatus:
        with self._lock:
            f = self.figures
            final = self.state.final
            total_ms = None
            if final and self.migration_started_at is not None and self.ended_at is not None:
                total_ms = int((self.ended_at - self.migration_started_at) * 1000)
            if final and f.time_elapsed_ms and self.state is JobState.SUCCEEDED:
                total_ms = f.time_elapsed_ms
            flags = self.flags
            return MigrationStatus(
                self.state, vm_id=self.vm_id, version=self.version.value, direction=OUTGOING,
                message=self.message, error=self.error, progress=self.progress, dst=self.params.dst,
                started_at=self.started_at, ended_at=self.ended_at,
                migration_started_at=self.migration_started_at,
                migration_returned_at=self.migration_returned_at,
                iteration=f.iteration, data_total=f.data_total, data_processed=f.data_processed,
                data_remaining=f.data_remaining, memory_total=f.memory_total,
                memory_processed=f.memory_processed, memory_remaining=f.memory_remaining,
                bandwidth_bps=f.memory_bps, dirty_rate_bps=f.dirty_rate_bps, time_elapsed_ms=f.time_elapsed_ms,
                max_downtime_ms=self.max_downtime_ms, postcopy=self._postcopy,
                downtime_ms=self._final_downtime(f) if final else None, total_time_ms=total_ms,
                bytes_transferred=f.data_processed if final else None,
                flags=flags.names if flags else (), typed_params=dict(flags.typed_params) if flags else {},
                destination_uri=flags.destination_uri if flags else None,
                notes=flags.notes if flags else (), warnings=flags.warnings if flags else (),
                schedule_actions=tuple(self.actions_run), unrecognized_params=tuple(self.unrecognized),
                dirty_sync_missed_zero_copy=self.missed_zero_copy, postcopy_downtime_ms=self.postcopy_downtime_ms,
                auto_converge_throttle_max=self.throttle_pct_max)

    def _final_downtime(self, f: JobFigures) -> int | None:
        """libvirt's figure of the completed job; after a switch to post-copy, which libvirt
        does not report, QEMU's own (read over QMP)."""
        if f.downtime_ms is None and self._postcopy:
            return self.postcopy_downtime_ms
        return f.downtime_ms

    # ---- the job -------------------------------------------------------------------------------

    def _set(self, state: JobState, message: str | None = None) -> None:
        with self._lock:
            self.state = state
            if message is not None:
                self.message = message
        self.version.bump()

    def _run(self) -> None:
        try:
            self._run_steps()
        except Exception as exc:  # noqa: BLE001 - the status must say why, never a dead thread
            log.exception("VM %s: migration job failed unexpectedly", self.vm_name)
            self._finish(JobState.FAILED, f"Migration failed: {exc}", str(exc))
        finally:
            if self._slot_taken:
                self.slots.release()
                self._slot_taken = False
            self._done.set()
            if self.on_finished:
                self.on_finished(self)

    def _run_steps(self) -> None:
        p = self.params
        self.flags = build_migration_flags(p, zerocopy_available=self.zerocopy_available,
                                           libvirt_transport=self.libvirt_transport)
        if self._paused_here():
            self._paused_at_start = True
            # libvirt's peer-to-peer migration would carry the paused state over by itself; say it
            # explicitly so the destination never resumes a guest its owner paused.
            self.flags = dataclasses.replace(
                self.flags, names=(*self.flags.names, PAUSED_FLAG),
                notes=(*self.flags.notes, "the VM is paused: it stays paused on the destination"))
        for note in self.flags.notes:
            log.info("VM %s: %s", self.vm_name, note)
        for warning in self.flags.warnings:
            log.warning("VM %s: %s", self.vm_name, warning)
        self._start_adaptive()

        if not self.slots.acquire(self._cancel, limit=p.outgoing_limit):
            self._finish(JobState.CANCELLED, "Migration cancelled while waiting for an outgoing slot")
            return
        self._slot_taken = True
        if not self._prepare_destination():
            return

        typed = dict(self.flags.typed_params)
        typed[PARAM_DEST_XML] = self.dom.XMLDesc(self.lv.VIR_DOMAIN_XML_MIGRATABLE)
        unsubscribe = [
            self.events.subscribe(self.vm_id, libvirt_edge.ITERATION, self._iterations.put),
            self.events.subscribe(self.vm_id, libvirt_edge.JOB_COMPLETED, self._on_job_completed),
            self.events.subscribe(self.vm_id, libvirt_edge.LIFECYCLE, self._on_lifecycle),
        ]
        self._set(JobState.RUNNING, "Migration in progress")
        self.migration_started_at = time.time()
        log.info("VM %s: migrating to %s flags=%s params=%s", self.vm_name, self.flags.destination_uri,
                 "|".join(self.flags.names), self.flags.typed_params)
        monitor = threading.Thread(target=self._monitor, name=f"migration-monitor-{self.vm_name}", daemon=True)
        monitor.start()
        outcome_error: Exception | None = None
        try:
            self.dom.migrateToURI3(self.flags.destination_uri, typed, self.flags.value(self.lv))
        except self.lv.libvirtError as exc:
            outcome_error = exc
        finally:
            self.migration_returned_at = time.time()
            log.info("VM %s: migrateToURI3 returned after %.3f s", self.vm_name,
                     self.migration_returned_at - self.migration_started_at)
            self._iterations.put(None)
            stop_at = time.monotonic() + 5
            monitor.join(max(0.0, stop_at - time.monotonic()))
            for u in unsubscribe:
                u()

        if outcome_error is None:
            self._succeeded()
            return
        message = _msg(outcome_error)
        if self._cancel.is_set():
            self._finish(JobState.CANCELLED, "Migration cancelled", message)
        elif self._limit_verdict is not None and self._limit_aborted:
            v = self._limit_verdict
            self._finish(JobState.ABORTED, f"Migration aborted by {v.limit}: {v.reason}",
                         f"{v.limit}: {v.reason} (libvirt: {message})")
        elif self._adaptive_abort is not None:
            self._finish(JobState.ABORTED, f"Migration aborted by adaptive convergence: {self._adaptive_abort}",
                         f"adaptive: {self._adaptive_abort} (libvirt: {message})")
        elif self._aborted_by_schedule:
            self._finish(JobState.ABORTED, "Migration aborted by the convergence schedule", message)
        else:
            self._finish(JobState.FAILED, f"Migration failed: {message}", message)
        self._cleanup_destination()

    def _prepare_destination(self) -> bool:
        """VM.migrationCreate on the destination, retried while it is full; False if we stop."""
        p = self.params
        client = self.destination(p.dst)
        request = {"vmID": self.vm_id, "name": self.vm_name,
                   "xml": self.dom.XMLDesc(self.lv.VIR_DOMAIN_XML_MIGRATABLE)}
        if p.incoming_limit:
            request["incomingLimit"] = p.incoming_limit
        while True:
            if self._cancel.is_set():
                self._finish(JobState.CANCELLED, "Migration cancelled while waiting for the destination")
                return False
            try:
                client.call("VM.migrationCreate", request)
                return True
            except JsonRpcError as exc:
                if exc.name != "migrateLimit":
                    self._finish(JobState.FAILED, f"Destination refused the migration: {exc.message}", exc.message)
                    return False
                self._set(JobState.WAITING, f"Destination busy ({exc.message}); retrying in {self.retry_interval:g} s")
                log.info("VM %s: destination %s busy, retrying in %g s", self.vm_name, p.dst, self.retry_interval)
                if self._cancel.wait(self.retry_interval):
                    self._finish(JobState.CANCELLED, "Migration cancelled while waiting for the destination")
                    return False

    def _cleanup_destination(self) -> None:
        try:
            self.destination(self.params.dst).call("VM.destroy", {"vmID": self.vm_id, "incomingOnly": True})
        except JsonRpcError as exc:
            if exc.name != "noVM":
                log.warning("VM %s: destination clean-up: %s", self.vm_name, exc.message)

    def _succeeded(self) -> None:
        # The event can trail migrateToURI3's return by a moment; woken the moment it comes.
        waited = time.monotonic()
        if self._completed.wait(COMPLETED_EVENT_WAIT_S):
            log.info("VM %s: job-completed event %.3f s after migrateToURI3 returned", self.vm_name,
                     time.monotonic() - waited)
        else:
            log.info("VM %s: no job-completed event within %g s of the migration's end; final figures "
                     "are the last polled ones", self.vm_name, COMPLETED_EVENT_WAIT_S)
        stats = self._completed_stats
        if stats:
            self._update_figures(figures_from_job_stats(stats), final=True)
        with self._lock:
            self.progress = 100
        self._undefine_leftover()
        self._finish(JobState.SUCCEEDED, "Migration succeeded")

    def _finish(self, state: JobState, message: str, error: str | None = None) -> None:
        with self._lock:
            self.state = state
            self.message = message
            self.error = error
            self.ended_at = time.time()
        self.version.bump()
        level = logging.INFO if state == JobState.SUCCEEDED else logging.WARNING
        log.log(level, "VM %s: %s", self.vm_name, message)

    # ---- monitor -------------------------------------------------------------------------------

    def _on_job_completed(self, params: dict) -> None:
        self._completed_stats = params
        self._completed.set()

    def _on_lifecycle(self, event: int, detail: int) -> None:
        lv = self.lv
        if event == lv.VIR_DOMAIN_EVENT_SUSPENDED and detail == lv.VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY:
            self._postcopy_started("event")

    def _monitor(self) -> None:
        init_done = False
        next_poll = time.monotonic()
        while True:
            timeout = max(0.0, next_poll - time.monotonic())
            try:
                item = self._iterations.get(timeout=timeout)
            except queue.Empty:
                item = "poll"
            if item is None:
                return
            if isinstance(item, int):
                if not init_done:
                    init_done = self._run_init()
                self._on_iteration(item, source="event")
                continue
            # Poll fast until the job shows up so the init actions run at its start.
            next_poll = time.monotonic() + (self.status_interval if init_done else min(0.1, self.status_interval))
            figures = self._poll()
            if figures is None:
                continue
            if not init_done and self._job_active(figures):
                init_done = self._run_init()
            if self._job_active(figures):
                self._check_hard_limits(figures)
                self._check_adaptive()
            if init_done and figures.iteration:
                self._on_iteration(figures.iteration, source="poll")

    def _job_active(self, figures: JobFigures) -> bool:
        return bool(figures.data_total or figures.memory_total or figures.iteration)

    def _run_init(self) -> bool:
        for action in self.runner.start():
            self._execute(action, None)
        if self.adaptive is not None:
            self._run_adaptive(self.adaptive.start(), None)
        return True

    def _poll(self) -> JobFigures | None:
        try:
            stats = self.dom.jobStats()
        except self.lv.libvirtError as exc:
            log.debug("VM %s: jobStats: %s", self.vm_name, _msg(exc))
            return None
        if not stats or stats.get("type") == self.lv.VIR_DOMAIN_JOB_NONE:
            return None
        figures = figures_from_job_stats(stats)
        self._last_stats = stats
        self._update_figures(figures)
        self._read_missed_zero_copy()
        self._read_postcopy_downtime()
        self._retry_pending_abort()
        self._note_throttle(stats)
        if self.runner.postcopy_requested:
            self._check_postcopy_state()
        return figures

    def _update_figures(self, figures: JobFigures, final: bool = False) -> None:
        with self._lock:
            if final and self.figures.iteration and not figures.iteration:
                figures = JobFigures(**{**figures.__dict__, "iteration": self.figures.iteration})
            before = (self.figures, self.progress)
            self.figures = figures
            # While the job runs, libvirt's `downtime` is QEMU's *expected* downtime, not the
            # switch-over; only the completed job's figure means the guest has moved.
            self.progress = progress_percent(figures.total, figures.remaining, self.progress,
                                             downtime_known=final and figures.downtime_ms is not None)
            changed = (self.figures, self.progress) != before
        if changed:
            self.version.bump()

    def _on_iteration(self, iteration: int, source: str) -> None:
        if self._limit_verdict is not None:
            return
        action = self.runner.on_iteration(iteration)
        if action is not None:
            n = iteration - (self.runner.baseline or iteration)
            log.info("VM %s: iteration %d (n=%d, from %s): running %s", self.vm_name, iteration, n, source, action)
            self._execute(action, n)

    def _execute(self, action: Action, n: int | None) -> None:
        record = {"n": n, "action": str(action), "at": time.time(), "ok": True}
        try:
            if action.name == SET_DOWNTIME:
                self.dom.migrateSetMaxDowntime(action.downtime_ms, 0)
                with self._lock:
                    self.max_downtime_ms = action.downtime_ms  # shown with the action's record below
            elif action.name == POSTCOPY:
                # Post-copy counts as started only when libvirt says so (the SUSPENDED_POSTCOPY
                # lifecycle event, or the paused-for-post-copy state seen by a poll).
                self.dom.migrateStartPostCopy(0)
            elif action.name == ABORT:
                record.update(self._abort_or_defer("the convergence schedule", self._mark_schedule_abort))
        except self.lv.libvirtError as exc:
            record["ok"] = False
            record["error"] = _msg(exc)
            log.warning("VM %s: schedule action %s failed: %s", self.vm_name, action, _msg(exc))
            if action.name == POSTCOPY:
                self.runner.postcopy_failed()   # Vdsm goes on with the next item (the abort)
        with self._lock:
            self.actions_run.append(record)
        self.version.bump()

