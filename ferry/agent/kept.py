"""Answers that never wait long for libvirt: fresh when libvirt answers in time, else the last one.

libvirt locks a domain while it stops the source QEMU at the end of a migration, and every
listing of domains (virConnectListAllDomains checks each one) and every query of that domain
waits for it: 1.1-1.9 s on the lab under load, right as a migration ended. Host.getStats,
Host.getVMList and VM.getStats therefore run their libvirt queries in a worker thread and wait
at most `deadline_s`; when the worker is late, the last fresh answer for the same question is
returned (its age in `stale_s`), and the worker's result, when it comes, becomes the next one.
Only a question never answered before waits for its first answer. At most one worker per
question runs at a time, so a stuck libvirt does not pile up threads.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

DEADLINE_S = 0.3
FIRST_WAIT_S = 10.0   # a question never answered before waits this long at most


@dataclass
class _Slot:
    value: Any = None
    at: float | None = None                # monotonic time of the last fresh answer
    running: threading.Event | None = None  # set when the worker in flight finishes
    result: list = field(default_factory=list)  # [("ok", value) | ("error", exc)] of that worker


class KeptAnswers:
    def __init__(self, deadline_s: float = DEADLINE_S, clock: Callable[[], float] = time.monotonic):
        self.deadline_s = deadline_s
        self._clock = clock
        self._lock = threading.Lock()
        self._slots: dict[Hashable, _Slot] = {}

    def get(self, key: Hashable, compute: Callable[[], Any]) -> tuple[Any, float | None]:
        """(answer, None) when fresh; (last answer, its age in s) when libvirt was late.
        An error from a fresh computation is raised; a late one is dropped (the next asks again)."""
        with self._lock:
            slot = self._slots.setdefault(key, _Slot())
            done = slot.running
            if done is None:
                done = slot.running = threading.Event()
                result: list = []
                slot.result = result
                threading.Thread(target=self._work, args=(slot, compute, done, result), daemon=True,
                                 name=f"kept-{key}").start()
            result = slot.result
        first = slot.at is None
        if done.wait(FIRST_WAIT_S if first else self.deadline_s) and result:
            kind, value = result[0]
            if kind == "error":
                raise value
            return value, None
        with self._lock:
            if slot.at is None:
                raise TimeoutError(f"libvirt did not answer within {FIRST_WAIT_S:g} s")
            return slot.value, self._clock() - slot.at

    def _work(self, slot: _Slot, compute: Callable[[], Any], done: threading.Event, result: list) -> None:
        try:
            value = compute()
            with self._lock:
                slot.value, slot.at = value, self._clock()
            result.append(("ok", value))
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
            result.append(("error", exc))
        finally:
            with self._lock:
                slot.running = None
            done.set()


def call_within(fn: Callable[[], Any], deadline_s: float) -> tuple[bool, Any, BaseException | None]:
    """Run `fn` in a worker; (finished, value, error) after at most `deadline_s`. A late call
    goes on in its worker (its outcome is then only logged by `fn` itself)."""
    box: list = []
    done = threading.Event()

    def work() -> None:
        try:
            box.append((fn(), None))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box.append((None, exc))
        finally:
            done.set()

    threading.Thread(target=work, daemon=True, name="bounded-call").start()
    if not done.wait(deadline_s):
        return False, None, None
    value, error = box[0]
    return True, value, error
