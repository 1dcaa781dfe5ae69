"""What a migration job watches besides its schedule, and what it cleans up.

- Vdsm's hard limits (`ferry.agent.hard_limits`): on every job-stats poll the remaining data
  advances the low mark and the pure decision says whether to abort, naming the limit;
- the real start of post-copy: libvirt's SUSPENDED_POSTCOPY event, or, when a switch was
  requested and the event missed, the source domain paused for post-copy;
- a paused VM (it migrates with VIR_MIGRATE_PAUSED and stays paused on the destination);
- the shut-off definition a persistent VM leaves on its source after a successful migration.

Mixed into `ferry.agent.migration.MigrationJob`, whose state it reads and sets.
"""
from __future__ import annotations

import logging
import time

from ferry.agent.hard_limits import decide, observe
from ferry.agent.progress import JobFigures

log = logging.getLogger("ferry.agent.migration")


class MigrationWatch:
    def _paused_here(self) -> bool:
        try:
            return self.dom.state()[0] == self.lv.VIR_DOMAIN_PAUSED
        except self.lv.libvirtError:
            return False

    def _postcopy_started(self, seen_from: str) -> None:
        with self._lock:
            if self._postcopy:
                return
            self._postcopy = True
        self.runner.postcopy_started()
        log.info("VM %s: post-copy started (%s)", self.vm_name, seen_from)
        self.version.bump()

    def _check_postcopy_state(self) -> None:
        """A requested switch whose event we missed: the source pauses for post-copy."""
        try:
            state, reason = self.dom.state()[:2]
        except self.lv.libvirtError:
            return
        if state == self.lv.VIR_DOMAIN_PAUSED and reason == self.lv.VIR_DOMAIN_PAUSED_POSTCOPY:
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
            self.dom.abortJob()
        except self.lv.libvirtError as exc:
            log.warning("VM %s: abortJob for %s: %s", self.vm_name, verdict.limit, _msg(exc))
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
