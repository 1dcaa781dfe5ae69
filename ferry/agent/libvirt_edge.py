"""The agent's connection to libvirt and the thread that delivers libvirt's events.

libvirt's default event loop must be registered before the connection is opened and then run
in its own thread; domain events (lifecycle, migration iteration, job completed) are fanned out
to listeners keyed by domain UUID. The rest of the agent gets the connection object and the
`EventHub`, so unit tests hand it a recording fake with the same methods instead.

libvirtd can go away (restart, crash, a cut link to a remote daemon) and come back. `LibvirtLink`
owns the connection and reopens it in its own thread with backoff (0.5, 1, 2, 4, 8, then every
10 s) whenever it breaks -- noticed from libvirt's close callback, a periodic isAlive() check, or
a call failing on a dead connection. `ReconnectingConnection` stands in for the connection:
every call goes to the current one, or raises `LibvirtUnavailable` (the verbs answer the
JSON-RPC error "libvirtUnavailable") while there is none. Listeners (`on_connect`) re-register
the event callbacks and adopt running jobs on each new connection.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

log = logging.getLogger("ferry.agent.libvirt")

_loop_lock = threading.Lock()
_loop_started = False

ITERATION = "iteration"
LIFECYCLE = "lifecycle"
JOB_COMPLETED = "job_completed"


def start_event_loop() -> None:
    """Registers libvirt's default event implementation and runs it in a daemon thread (once)."""
    global _loop_started
    import libvirt

    with _loop_lock:
        if _loop_started:
            return
        libvirt.virEventRegisterDefaultImpl()

        def run() -> None:
            while True:
                try:
                    libvirt.virEventRunDefaultImpl()
                except Exception:  # noqa: BLE001 - the loop must survive one bad callback
                    log.exception("libvirt event loop iteration failed")

        threading.Thread(target=run, name="libvirt-events", daemon=True).start()
        _loop_started = True


def open_connection(uri: str):
    """Opens `uri` with the event loop running and keepalive on."""
    import libvirt

    start_event_loop()
    conn = libvirt.open(uri)
    if conn is None:
        raise RuntimeError(f"cannot open libvirt connection {uri}")
    try:
        conn.setKeepAlive(5, 3)
    except libvirt.libvirtError:
        pass
    return conn


RECONNECT_BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0)
RECONNECT_MAX_S = 10.0
ALIVE_CHECK_S = 2.0


class LibvirtUnavailable(Exception):
    """There is no working libvirt connection right now (the link is reconnecting)."""


def backoff_delay(attempt: int, steps: tuple[float, ...] = RECONNECT_BACKOFF_S,
                  maximum: float = RECONNECT_MAX_S) -> float:
    """Seconds to wait after failed attempt number `attempt` (0-based)."""
    return min(maximum, steps[attempt] if attempt < len(steps) else maximum)


class LibvirtLink:
    """The agent's one libvirt connection, reopened with backoff whenever it breaks."""

    def __init__(self, lv, open_fn: Callable[[], Any], *, check_interval: float = ALIVE_CHECK_S,
                 backoff: Callable[[int], float] = backoff_delay, clock: Callable[[], float] = time.time):
        self.lv = lv
        self._open = open_fn
        self._check_interval = check_interval
        self._backoff = backoff
        self._clock = clock
        self._lock = threading.Lock()
        self._conn = None
        self._to_close: list = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._listeners: list[Callable[[Any], None]] = []
        self._thread: threading.Thread | None = None
        self.down_since: float | None = clock()
        self.last_error: str | None = "not connected yet"
        self.connects = 0                 # successful opens (1 = the first one)
        self.outages: list[float] = []    # seconds each past outage lasted (down -> up again)

    # ---- state -------------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self._conn is not None

    def connection(self):
        """The current connection, or LibvirtUnavailable naming why there is none."""
        conn = self._conn
        if conn is None:
            raise LibvirtUnavailable(self.describe())
        return conn

    def describe(self) -> str:
        since = self.down_since
        down = f" for {self._clock() - since:.1f} s" if since is not None else ""
        return f"libvirt unavailable{down} ({self.last_error}); reconnecting"

    def on_connect(self, callback: Callable[[Any], None]) -> None:
        """`callback(conn)` after each (re)connection, in the link's thread."""
        self._listeners.append(callback)

    def broken(self, conn, reason: str) -> None:
        """`conn` (the one a caller used) failed as a dead connection does: drop it, reconnect."""
        with self._lock:
            if conn is not None and conn is not self._conn:
                return                    # an older connection, already replaced
            if self._conn is None:
                return
            self._conn = None
            self.down_since = self._clock()
            self.last_error = reason
            self._to_close.append(conn)   # closed by the link's thread, never in a callback
        log.warning("libvirt connection lost: %s; reconnecting", reason)
        self._wake.set()

    def _close_dropped(self) -> None:
        with self._lock:
            dropped, self._to_close = self._to_close, []
        for conn in dropped:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - a dead connection may refuse even that
                pass

    def is_dead(self, conn) -> bool:
        """After a failed call: is `conn` dead (then it is dropped)? """
        try:
            alive = bool(conn.isAlive())
        except Exception:  # noqa: BLE001
            alive = False
        if not alive:
            self.broken(conn, "the connection to libvirtd is closed")
        return not alive

    # ---- the reconnecting thread -------------------------------------------------------------
    def connect_once(self) -> bool:
        """One attempt to open the connection; True when connected."""
        try:
            conn = self._open()
        except Exception as exc:  # noqa: BLE001 - libvirtError, OSError, RuntimeError alike
            self.last_error = getattr(exc, "get_error_message", lambda: None)() or str(exc)
            return False
        register = getattr(conn, "registerCloseCallback", None)
        if register is not None:
            try:
                register(lambda _c, reason, _opaque, _conn=conn: self.broken(
                    _conn, f"libvirt closed the connection (reason {reason})"), None)
            except Exception:  # noqa: BLE001 - the periodic check still notices
                log.debug("registerCloseCallback failed", exc_info=True)
        with self._lock:
            was_down = self.down_since
            self._conn = conn
            self.down_since = None
            self.last_error = None
            self.connects += 1
        if self.connects > 1 and was_down is not None:
            self.outages.append(self._clock() - was_down)
            log.info("libvirt connection back after %.1f s", self.outages[-1])
        for callback in list(self._listeners):
            try:
                callback(conn)
            except Exception:  # noqa: BLE001 - one listener must not stop the others
                log.exception("libvirt on-connect listener failed")
        return True

    def start(self) -> None:
        """First attempt now, then keep the connection up in a daemon thread."""
        if not self.connect_once():
            log.warning("libvirt: %s", self.describe())
        self._thread = threading.Thread(target=self._run, name="libvirt-link", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            self._close_dropped()
            conn = self._conn
            if conn is not None:
                attempt = 0
                self._wake.wait(self._check_interval)
                self._wake.clear()
                if self._conn is conn and not self._stop.is_set():
                    self.is_dead(conn)   # a dead one is dropped; the next turn reconnects
                continue
            if self.connect_once():
                continue
            delay = self._backoff(attempt)
            attempt += 1
            log.info("libvirt: reconnect attempt %d failed (%s); next in %g s", attempt, self.last_error, delay)
            self._stop.wait(delay)


class ReconnectingConnection:
    """Stands in for a libvirt connection: each call goes to the link's current one.

    A call while there is none raises LibvirtUnavailable; a libvirtError from a connection that
    turns out dead is LibvirtUnavailable too (and starts the reconnection).
    """

    def __init__(self, link: LibvirtLink):
        self.link = link

    def __getattr__(self, name: str):
        link = self.link

        def call(*args, **kwargs):
            conn = link.connection()
            try:
                return getattr(conn, name)(*args, **kwargs)
            except link.lv.libvirtError:
                if link.is_dead(conn):
                    raise LibvirtUnavailable(link.describe()) from None
                raise
        call.__name__ = name
        return call


class EventHub:
    """Registers the agent's domain event callbacks once and dispatches them by domain UUID."""

    def __init__(self, conn, libvirt_module):
        self._conn = conn
        self._lv = libvirt_module
        self._lock = threading.Lock()
        self._listeners: dict[tuple[str, str], list[Callable[..., None]]] = defaultdict(list)
        self._any: dict[str, list[Callable[..., None]]] = defaultdict(list)
        self._ids: list[int] = []

    def register(self) -> None:
        lv = self._lv
        self._ids.append(self._conn.domainEventRegisterAny(
            None, lv.VIR_DOMAIN_EVENT_ID_MIGRATION_ITERATION, self._on_iteration, None))
        self._ids.append(self._conn.domainEventRegisterAny(
            None, lv.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_lifecycle, None))
        self._ids.append(self._conn.domainEventRegisterAny(
            None, lv.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED, self._on_job_completed, None))

    def reregister(self, conn=None) -> None:
        """On a new connection: the old callback ids died with the old one."""
        self._ids.clear()
        self.register()

    def close(self) -> None:
        for cb_id in self._ids:
            try:
                self._conn.domainEventDeregisterAny(cb_id)
            except Exception:  # noqa: BLE001 - best effort on shutdown
                pass
        self._ids.clear()

    def subscribe(self, uuid: str, kind: str, callback: Callable[..., None]) -> Callable[[], None]:
        """Calls `callback(*payload)` for events of `kind` about domain `uuid`; returns unsubscribe."""
        with self._lock:
            self._listeners[(uuid, kind)].append(callback)

        def unsubscribe() -> None:
            with self._lock:
                try:
                    self._listeners[(uuid, kind)].remove(callback)
                except ValueError:
                    pass
        return unsubscribe

    def subscribe_all(self, kind: str, callback: Callable[..., None]) -> None:
        """`callback(uuid, *payload)` for events of `kind` about any domain."""
        with self._lock:
            self._any[kind].append(callback)

    def _dispatch(self, dom, kind: str, *payload: Any) -> None:
        try:
            uuid = dom.UUIDString()
        except Exception:  # noqa: BLE001
            return
        with self._lock:
            targets = list(self._listeners.get((uuid, kind), ())) + [
                (lambda *p, _cb=cb: _cb(uuid, *p)) for cb in self._any.get(kind, ())]
        for callback in targets:
            try:
                callback(*payload)
            except Exception:  # noqa: BLE001 - one listener must not break the others
                log.exception("listener for %s event of %s failed", kind, uuid)

    def _on_iteration(self, conn, dom, iteration, opaque) -> None:
        self._dispatch(dom, ITERATION, int(iteration))

    def _on_lifecycle(self, conn, dom, event, detail, opaque) -> None:
        self._dispatch(dom, LIFECYCLE, int(event), int(detail))

    def _on_job_completed(self, conn, dom, params, opaque) -> None:
        self._dispatch(dom, JOB_COMPLETED, dict(params))
