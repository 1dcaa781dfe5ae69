"""VM.getMigrationStatus as a long poll: Ferry's `waitForChange` extension parameter.

`{"vmID": ..., "waitForChange": {"version": N, "timeout": S}}` answers as soon as the
migration's status version differs from N (the caller saw version N last), or after S seconds
(at most MAX_WAIT_S) with the unchanged status. Without the parameter the verb answers at once,
as Vdsm's does; a caller that gets no `version` back is talking to an agent without this
extension and polls on its own interval.

The version is a counter the migration job bumps on every change of what its status shows
(state, message, progress, figures, schedule actions), so a follower learns of the end of a
migration within milliseconds instead of at its next poll.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ferry.common.errors import InvalidInput

MAX_WAIT_S = 5.0
PARAM = "waitForChange"


@dataclass(frozen=True)
class WaitForChange:
    version: int      # the status version the caller saw last
    timeout: float    # seconds to wait at most for a different one


def parse_wait_for_change(raw) -> WaitForChange | None:
    """The `waitForChange` parameter, checked; None when absent (answer at once)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidInput(PARAM, "must be an object {version, timeout}")
    unknown = sorted(set(raw) - {"version", "timeout"})
    if unknown:
        raise InvalidInput(f"{PARAM}.{unknown[0]}", "is not a known field (version, timeout)")
    version = raw.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise InvalidInput(f"{PARAM}.version", "must be a non-negative integer (the version last seen)")
    timeout = raw.get("timeout", MAX_WAIT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout):
        raise InvalidInput(f"{PARAM}.timeout", "must be a number of seconds")
    if not 0 <= timeout <= MAX_WAIT_S:
        raise InvalidInput(f"{PARAM}.timeout", f"must be between 0 and {MAX_WAIT_S:g} s")
    return WaitForChange(version, float(timeout))
