"""The agent's connection to libvirt and the thread that delivers libvirt's events.

libvirt's default event loop must be registered before the connection is opened and then run
in its own thread; domain events (lifecycle, migration iteration, job completed) are fanned out
to listeners keyed by domain UUID. The rest of the agent gets the connection object and the
`EventHub`, so unit tests hand it a recording fake with the same methods instead.
"""
from __future__ import annotations

import logging
import threading
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
