"""Host.getCapabilities' answer, computed off the request path and kept.

Computing it asks libvirt for every domain's XML (the memtune hard-limit warnings), and on a
host that is receiving a migration libvirt holds the incoming domain's XML until the migration
ends: Host.getCapabilities once took 25.6 s there, and the engine's monitor, with its 10 s
timeout, marked the destination DOWN. So the answer is computed once, then refreshed in a
background thread (every `refresh_s` seconds, and soon after `invalidate`, e.g. on a domain
lifecycle event or a new libvirt connection); a request only ever reads the kept copy. Only
the very first request, before anything was computed, waits for the computation.
"""
from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("ferry.agent.caps")

REFRESH_S = 30.0


class CapabilitiesCache:
    def __init__(self, compute: Callable[[], dict], refresh_s: float = REFRESH_S,
                 clock: Callable[[], float] = time.monotonic):
        self._compute = compute
        self._refresh_s = refresh_s
        self._clock = clock
        self._lock = threading.Lock()          # one computation at a time
        self._value: dict | None = None
        self._at = 0.0
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.computations = 0

    def get(self) -> dict:
        """The kept answer (a copy); computed here only if there is none yet."""
        value = self._value
        if value is None:
            value = self.refresh()
        elif self._clock() - self._at > self._refresh_s:
            self.invalidate()
        return copy.deepcopy(value)

    @property
    def ready(self) -> bool:
        return self._value is not None

    def refresh(self) -> dict:
        """Compute now (blocking the caller): the refresher thread and the first request."""
        with self._lock:
            value = self._compute()
            self._value, self._at = value, self._clock()
            self.computations += 1
        self._ensure_thread()
        return value

    def invalidate(self) -> None:
        """Recompute soon, in the background."""
        self._ensure_thread()
        self._wake.set()

    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="capabilities", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait(self._refresh_s)
            self._wake.clear()
            try:
                self.refresh()
            except Exception as exc:  # noqa: BLE001 - keep the last good answer
                log.warning("refreshing capabilities failed (keeping the last answer): %s", exc)
