"""How the orchestrator paces VM.getMigrationStatus calls (pure).

With an agent that knows Ferry's `waitForChange` extension (its status carries `version`), the
orchestrator long-polls: each call names the version seen last and the agent answers the moment
the status changes, or after LONG_POLL_S, so the end of a migration is known within
milliseconds and progress still arrives at >= 1 Hz. An agent without the extension ignores the
parameter and answers at once; then the orchestrator sleeps its poll interval between calls, as
a plain poller does. An agent that claims the extension but answers at once with nothing new is
treated the same way, so the follower never spins.
"""
from __future__ import annotations

from ferry.protocol.status import MigrationStatus

LONG_POLL_S = 1.0           # the longest an agent holds a call: progress is still seen at >= 1 Hz
ANSWERED_AT_ONCE_S = 0.05   # an unchanged answer quicker than this did not wait


def status_request(vm_id: str, seen_version: int | None, wait_s: float = LONG_POLL_S) -> dict:
    """VM.getMigrationStatus's params: a long poll once a version is known (the first call
    asks with version 0, which no running job has left, so it answers at once)."""
    return {"vmID": vm_id, "waitForChange": {"version": seen_version or 0, "timeout": wait_s}}


def pause_before_next(status: MigrationStatus, asked_version: int | None, call_s: float,
                      poll_interval: float) -> float:
    """Seconds to sleep before the next status call (0 = ask again at once)."""
    version = status.version
    if version is None:
        return poll_interval                       # no extension: plain polling
    if version != asked_version:
        return 0.0                                 # something changed: ask for the next change
    if call_s < ANSWERED_AT_ONCE_S:
        return poll_interval                       # unchanged and did not wait: don't spin
    return 0.0                                     # waited its timeout: progress is >= 1 Hz
