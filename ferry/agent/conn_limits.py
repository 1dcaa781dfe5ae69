"""Limits on the agent's connections: how many at once per client address, and how long a
request may take to arrive.

A client that opens connections and never finishes a request would otherwise hold one agent
thread (and file descriptor) each, forever. So:

- `ClientSlots`: at most N connections at once from one address, counted from accept (before
  the TLS handshake, so unauthenticated floods are bounded too); the next one is closed at once.
- `Deadlines`: a request's line, headers and body must all arrive within the read timeout of
  its first byte being awaited; a reaper thread shuts the socket of a request that is late. A
  per-recv socket timeout alone would let a client trickle one byte at a time forever.
"""
from __future__ import annotations

import socket
import threading
import time
from collections import Counter

DEFAULT_READ_TIMEOUT = 30.0            # s for one request's line, headers and body
DEFAULT_MAX_PER_CLIENT = 64            # engine long polls + monitor + CLI share an address


class ClientSlots:
    """Counts open connections per client address (thread-safe)."""

    def __init__(self, limit: int = DEFAULT_MAX_PER_CLIENT):
        if limit < 1:
            raise ValueError(f"max connections per client must be at least 1, got {limit}")
        self.limit = limit
        self._lock = threading.Lock()
        self._open: Counter[str] = Counter()

    def try_acquire(self, address: str) -> bool:
        with self._lock:
            if self._open[address] >= self.limit:
                return False
            self._open[address] += 1
            return True

    def release(self, address: str) -> None:
        with self._lock:
            self._open[address] -= 1
            if self._open[address] <= 0:
                del self._open[address]

    def open(self, address: str) -> int:
        with self._lock:
            return self._open[address]


class Deadlines:
    """Sockets that must finish reading a request by a time; late ones are shut down."""

    def __init__(self, timeout: float = DEFAULT_READ_TIMEOUT):
        if timeout <= 0:
            raise ValueError(f"read timeout must be above 0, got {timeout}")
        self.timeout = timeout
        self._lock = threading.Lock()
        self._due: dict[int, tuple[float, socket.socket]] = {}
        self._wake = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None
        self.expired = 0  # how many requests were cut off (for logs and tests)

    def arm(self, sock: socket.socket) -> None:
        with self._lock:
            self._due[id(sock)] = (time.monotonic() + self.timeout, sock)
            if self._thread is None:
                self._thread = threading.Thread(target=self._reap, name="read-deadlines", daemon=True)
                self._thread.start()

    def disarm(self, sock: socket.socket) -> None:
        with self._lock:
            self._due.pop(id(sock), None)

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()

    def _reap(self) -> None:
        tick = min(max(self.timeout / 10, 0.05), 1.0)
        while not self._stopped:
            now = time.monotonic()
            with self._lock:
                late = [s for key, (due, s) in list(self._due.items()) if due <= now and self._due.pop(key)]
            for sock in late:
                self.expired += 1
                try:  # the plain socket's shutdown: an SSLSocket's would drop its state under the reader
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)
                except OSError:
                    pass
            self._wake.wait(tick)
