"""Running a convergence schedule: what to do to a migration that does not converge, and when.

The schedule's types and wire form are the protocol's (`ferry.protocol.schedule`): the engine
sends one in VM.migrate; without one the agent uses the legacy downtime steps. `ScheduleRunner`
is a pure state machine: the migration job feeds it the memory iterations it sees (from
libvirt's migration-iteration events and from job-stats polls) and runs the actions it hands
back. Rules (ovirt-migration-facts §3):

- every `init` action runs at start;
- the first iteration seen is the baseline; on each iteration that grew, n = iteration -
  baseline, and if the head stalling item's limit < n it runs and is popped -- at most one action
  per new iteration, so limit -1 fires on the next new iteration;
- a handed-out post-copy switch holds the schedule until the job says how it went: once
  post-copy has really started (libvirt's post-copy lifecycle event or the paused-for-post-copy
  state; `postcopy_started`) nothing else runs, as after an abort; if migrateStartPostCopy
  failed (`postcopy_failed`) the schedule goes on and the next item runs on the next new
  iteration, as Vdsm's monitor does ("the next action will be invoked after a while") -- which
  is why a policy puts an abort after its post-copy item.
"""
from __future__ import annotations

from ferry.protocol.schedule import ABORT, POSTCOPY, Action, Schedule, StallingStep


class ScheduleRunner:
    """Pure state machine over one migration's iterations; it never calls libvirt itself."""

    def __init__(self, schedule: Schedule):
        self.schedule = schedule
        self._pending = list(schedule.stalling)
        self.baseline: int | None = None
        self.last_iteration: int | None = None
        self.finished = False      # post-copy started or aborted: no more actions
        self.postcopy_requested = False  # post-copy handed out, not yet known started or failed
        self.done: list[tuple[int | None, Action]] = []  # (n, action) in the order handed out

    def start(self) -> list[Action]:
        """Actions to run when the migration starts (the init list)."""
        actions = list(self.schedule.init)
        self.done.extend((None, a) for a in actions)
        return actions

    def on_iteration(self, iteration: int) -> Action | None:
        """Feed one observed memory iteration; returns the action to run now, if any."""
        if self.baseline is None:
            self.baseline = self.last_iteration = iteration
            return None
        if iteration <= self.last_iteration:
            return None  # the same iteration seen again (event and poll), or stale
        self.last_iteration = iteration
        if self.finished or self.postcopy_requested or not self._pending:
            return None
        n = iteration - self.baseline
        head = self._pending[0]
        if head.limit < n:
            self._pending.pop(0)
            self.done.append((n, head.action))
            if head.action.name == ABORT:
                self.finished = True
            elif head.action.name == POSTCOPY:
                self.postcopy_requested = True
            return head.action
        return None

    def postcopy_started(self) -> None:
        """Post-copy really runs (seen from libvirt): nothing else may run."""
        self.postcopy_requested = False
        self.finished = True

    def postcopy_failed(self) -> None:
        """The switch to post-copy failed: the schedule goes on with its next item."""
        if not self.finished:
            self.postcopy_requested = False

    @property
    def remaining(self) -> tuple[StallingStep, ...]:
        return tuple(self._pending)
