"""What a migration job watches besides its schedule, and what it cleans up.

- Vdsm's hard limits (`ferry.agent.hard_limits`): on every job-stats poll the remaining data
  advances the low mark and the pure decision says whether to abort, naming the limit;
- the real start of post-copy: libvirt's SUSPENDED_POSTCOPY event, or, when a switch was
  requested and the event missed, the source domain paused for post-copy; then QEMU's own
  post-copy downtime (query-migrate, `ferry.agent.qmp_migrate.postcopy_downtime`), which
  libvirt's job stats never carry, read on the next poll;
- a paused VM (it migrates with VIR_MIGRATE_PAUSED and stays paused on the destination);
- QEMU's dirty-sync-missed-zero-copy (`ferry.agent.qmp_migrate`), read with query-migrate on
  each job-stats poll of a zero-copy migration (the monitor thread, never a request);
- the shut-off definition a persistent VM leaves on its source after a successful migration;
- an abort (the schedule's, a hard limit's, adaptive's) that lands in the switch-over waits for
  its outcome (`ferry.agent.switch_over`): the final bitmap sync is reported as an iteration;
- Ferry's adaptive convergence (`ferry.agent.adaptive`), when VM.migrate carries `adaptive`: every
  job-stats poll feeds the pure controller, whose decisions run here (downtime, the throttle
  increment through QEMU's monitor where the agent has that channel, post-copy, abort).

Mixed into `ferry.agent.migration.MigrationJob`, whose state it reads and sets.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from ferry.agent.adaptive import ABORT, POSTCOPY, SET_DOWNTIME, SET_THROTTLE, AdaptiveController, detect_capabilities
from ferry.agent.adaptive import Observation as AdaptiveObservation
from ferry.agent.hard_limits import decide, observe
from ferry.agent.progress import JobFigures
from ferry.agent.qmp_migrate import QUERY_MIGRATE, missed_zero_copy, postcopy_downtime, reads_missed_zero_copy
from ferry.agent.switch_over import PAUSED_BY_OWNER, PAUSED_FOR_MIGRATION, PAUSED_FOR_POSTCOPY, RUNNING, AbortCheck, check_abort
from ferry.forecast.live import from_job_stats

log = logging.getLogger("ferry.agent.migration")


class MigrationWatch:
    def _paused_here(self) -> bool:
        return self._source_state() != RUNNING      # a libvirtError reads as RUNNING: not paused

    def _postcopy_started(self, seen_from: str) -> None:
        with self._lock:
            if self._postcopy:
                return
            self._postcopy = True
        self.runner.postcopy_started()
        if self.adaptive is not None:
            self.adaptive.postcopy_started()
        log.info("VM %s: post-copy started (%s)", self.vm_name, seen_from)
        self.version.bump()
        self._iterations.put("poll")      # read the switch-over's downtime now, not a poll later

    def _note_throttle(self, stats: dict) -> None:
        """The highest auto-converge throttle (%) libvirt's job stats showed: the throttle the
        guest really got, whoever raised it (QEMU's own steps, or adaptive's increment)."""
        pct = stats.get("auto_converge_throttle")
        if isinstance(pct, int) and not isinstance(pct, bool) and pct > (self.throttle_pct_max or 0):
            with self._lock:
                self.throttle_pct_max = pct
            self.version.bump()

    def _read_postcopy_downtime(self) -> None:
        """QEMU's downtime of the switch to post-copy (query-migrate on the source, once)."""
        if not self._postcopy or self.postcopy_downtime_ms is not None or self.monitor_command is None \
                or not self._qmp_postcopy:
            return
        try:
            value = postcopy_downtime(self.monitor_command(self.dom, QUERY_MIGRATE))
        except (self.lv.libvirtError, ImportError, AttributeError, TypeError, ValueError) as exc:
            self._qmp_postcopy = False
            log.warning("VM %s: query-migrate for the post-copy downtime failed, it stays unknown: %s",
                        self.vm_name, _msg(exc))
            return
        if value is not None:
            with self._lock:
                self.postcopy_downtime_ms = value
            log.info("VM %s: post-copy switch-over downtime %d ms (QEMU)", self.vm_name, value)
            self.version.bump()

    def _check_postcopy_state(self) -> None:
        """A requested switch whose event we missed: the source pauses for post-copy."""
        if self._source_state() == PAUSED_FOR_POSTCOPY:
            self._postcopy_started("domain state")

    def _check_hard_limits(self, figures: JobFigures) -> None:
        if self._limit_verdict is not None or self.migration_started_at is None:
            return
        now = time.time()
        if figures.data_total:
            self._low_mark = observe(self._low_mark, figures.data_remaining, now)
        verdict = decide(self.hard_limits, memory_mib=self.memory_mib, elapsed_s=now - self.migration_started_at,
                         mark=self._low_mark, now=now, postcopy=self._postcopy)
        if not verdict.abort:
            return
        self._limit_verdict = verdict
        self.runner.finished = True   # the schedule has nothing more to say
        log.warning("VM %s: aborting the migration: %s: %s", self.vm_name, verdict.limit, verdict.reason)
        try:
            self._abort_or_defer(verdict.limit, self._mark_limit_abort)
        except self.lv.libvirtError as exc:
            log.warning("VM %s: abortJob for %s: %s", self.vm_name, verdict.limit, _msg(exc))
        self.version.bump()

    # ---- aborts wait out a switch-over (`ferry.agent.switch_over`) -------------------------------

    _paused_at_start = False
    _limit_aborted = False
    _pending_abort: tuple[str, Callable[[], None]] | None = None   # (by whom, mark) waiting out a switch-over

    def _mark_schedule_abort(self) -> None:
        self._aborted_by_schedule = True

    def _mark_limit_abort(self) -> None:
        self._limit_aborted = True

    def _source_state(self) -> str:
        try:
            state, reason = self.dom.state()[:2]
        except self.lv.libvirtError:
            return RUNNING      # unknown: abort as asked (libvirt says no if it cannot)
        if state != self.lv.VIR_DOMAIN_PAUSED:
            return RUNNING
        if reason == self.lv.VIR_DOMAIN_PAUSED_MIGRATION:
            return PAUSED_FOR_MIGRATION
        if reason == self.lv.VIR_DOMAIN_PAUSED_POSTCOPY:
            return PAUSED_FOR_POSTCOPY
        return PAUSED_BY_OWNER

    def _abort_check(self) -> AbortCheck:
        return check_abort(self._source_state(), paused_at_start=self._paused_at_start)

    def _abort_or_defer(self, what: str, mark: Callable[[], None]) -> dict:
        """abortJob now, or once the switch-over under way has not finished (next poll); returns
        what the action's record adds (a deferral's reason). libvirtError propagates."""
        check = self._abort_check()
        if not check.now:
            self._pending_abort = (what, mark)
            log.warning("VM %s: abort by %s deferred: %s", self.vm_name, what, check.reason)
            return {"deferred": check.reason}
        mark()
        self.dom.abortJob()
        return {}

    def _retry_pending_abort(self) -> None:
        if self._pending_abort is None:
            return
        check = self._abort_check()
        if not check.now:
            return
        what, mark = self._pending_abort
        self._pending_abort = None
        record = {"n": None, "action": "abort", "at": time.time(), "ok": True,
                  "reason": f"the abort by {what} deferred during the switch-over; the migration did not "
                            f"finish: {check.reason}"}
        log.warning("VM %s: %s", self.vm_name, record["reason"])
        mark()
        try:
            self.dom.abortJob()
        except self.lv.libvirtError as exc:
            record["ok"], record["error"] = False, _msg(exc)
        with self._lock:
            self.actions_run.append(record)
        self.version.bump()

    # ---- adaptive convergence ------------------------------------------------------------------

    def _start_adaptive(self) -> None:
        spec = self.params.adaptive
        if spec is None:
            return
        caps = detect_capabilities(spec, flag_names=self.flags.names, parallel=self.params.parallel,
                                   qemu_version=self.qemu_version, paused=self._paused_here(),
                                   live_throttle=self.monitor_command is not None)
        memory = self.memory_mib or 1
        touched = None if spec.touched_mib is None else min(float(spec.touched_mib), memory)
        self.adaptive = AdaptiveController(spec, caps, memory_mib=memory, touched_mib=touched or 0.0,
                                           touched_known=bool(touched))
        log.info("VM %s: adaptive convergence: max downtime %d ms, time bound %.0f s, post-copy %s (%s), "
                 "live throttle %s", self.vm_name, spec.max_downtime_ms, self.adaptive.budget_s,
                 "possible" if caps.postcopy else "not possible", caps.postcopy_why,
                 "yes" if caps.throttle_control else "no")

    def _check_adaptive(self) -> None:
        if self.adaptive is None or self._limit_verdict is not None or not self._last_stats:
            return
        live = from_job_stats(self._last_stats, baseline_iteration=0, downtime_limit_ms=0)
        throttle = self._last_stats.get("auto_converge_throttle", 0)
        obs = AdaptiveObservation(iteration=live.iteration, remaining_mib=live.remaining_mib,
                                  dirty_rate_mibs=live.dirty_rate_mibs, throughput_mibs=live.throughput_mibs,
                                  elapsed_s=live.elapsed_s, throttle_pct=int(throttle or 0))
        self._run_adaptive(self.adaptive.observe(obs), live.iteration)

    def _run_adaptive(self, decisions, iteration) -> None:
        for d in decisions:
            record = {"n": iteration, "action": str(d), "at": time.time(), "ok": True, "reason": d.reason}
            log.info("VM %s: adaptive: %s: %s", self.vm_name, d, d.reason)
            try:
                if d.action == SET_DOWNTIME:
                    self.dom.migrateSetMaxDowntime(d.downtime_ms, 0)
                    with self._lock:
                        self.max_downtime_ms = d.downtime_ms
                elif d.action == SET_THROTTLE:
                    self._set_throttle(d.throttle_increment_pct)
                elif d.action == POSTCOPY:
                    self.dom.migrateStartPostCopy(0)
                elif d.action == ABORT:
                    self.runner.finished = True
                    record.update(self._abort_or_defer("adaptive convergence",
                                                       lambda why=d.reason: setattr(self, "_adaptive_abort", why)))
            except self.lv.libvirtError as exc:
                record["ok"], record["error"] = False, _msg(exc)
                log.warning("VM %s: adaptive %s failed: %s", self.vm_name, d, _msg(exc))
                if d.action == POSTCOPY:
                    self.adaptive.postcopy_failed(_msg(exc))
            with self._lock:
                self.actions_run.append(record)
            self.version.bump()

    def _set_throttle(self, increment_pct: int) -> None:
        """cpu-throttle-increment through QEMU's monitor; a channel that fails is given up."""
        try:
            self.monitor_command(self.dom, {"execute": "migrate-set-parameters",
                                            "arguments": {"cpu-throttle-increment": increment_pct}})
        except (self.lv.libvirtError, AttributeError, TypeError, ValueError) as exc:
            self.adaptive.throttle_failed(_msg(exc))
            raise self.lv.libvirtError(f"QEMU monitor: {_msg(exc)}") from exc

    def _read_missed_zero_copy(self) -> None:
        """query-migrate through QEMU's monitor, for the count libvirt's job stats lack. A QEMU
        without the stat leaves it unknown; a monitor that fails is not asked again."""
        if not self._qmp_stats or not reads_missed_zero_copy(self.flags.names if self.flags else (),
                                                             self.monitor_command is not None):
            return
        try:
            answer = self.monitor_command(self.dom, QUERY_MIGRATE)
        except (self.lv.libvirtError, ImportError, AttributeError, TypeError, ValueError) as exc:
            self._qmp_stats = False
            log.warning("VM %s: query-migrate through the QEMU monitor failed, zero-copy misses stay "
                        "unknown: %s", self.vm_name, _msg(exc))
            return
        value = missed_zero_copy(answer)
        if value is None:
            return
        with self._lock:
            changed, self.missed_zero_copy = value != self.missed_zero_copy, value
        if changed:
            self.version.bump()

    def _undefine_leftover(self) -> None:
        """A persistent VM (one that once migrated here with PERSIST_DEST) leaves its shut-off
        definition behind when it migrates away; the VM now lives elsewhere, so drop it."""
        try:
            if not self.dom.isActive() and self.dom.isPersistent():
                self.dom.undefine()
                log.info("VM %s: removed the shut-off definition left on this host", self.vm_name)
        except self.lv.libvirtError as exc:   # already gone: nothing left to remove
            log.debug("VM %s: leftover definition: %s", self.vm_name, _msg(exc))


def _msg(exc: Exception) -> str:
    getter = getattr(exc, "get_error_message", None)
    message = getter() if getter else None
    return message or str(exc)


def qemu_monitor_command(dom, command: dict):
    """QEMU's monitor through libvirt-qemu (libvirt marks the domain tainted 'custom-monitor');
    the agent's one channel to parameters libvirt's API sets only at a migration's start."""
    import libvirt_qemu  # noqa: PLC0415 - the agent's libvirt edge; absent binding: no live throttle

    return json.loads(libvirt_qemu.qemuMonitorCommand(dom, json.dumps(command), 0))
