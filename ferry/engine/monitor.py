"""The host monitor: what the engine knows of each host comes from the host's agent.

Every `interval` seconds (and within a second for a host never contacted, e.g. just added) the
monitor asks each agent for Host.getCapabilities, Host.getStats and Host.getVMList, and records:
status UP (answered) or DOWN (unreachable; a host in MAINTENANCE stays there), the capabilities
(with the free memory from the stats under `memFree`, which destination choice reads), and where
the inventory's VMs run. VMs that a migration or a start/stop is moving are left alone: the
orchestrator and the VM lifecycle own them while they act (`PlacementGuard`).

`reconcile_vms` is the pure rule; `HostMonitor` is the thread and the I/O around it.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ferry.common.jsonrpc import JsonRpcClient, JsonRpcError
from ferry.engine.agent_pool import AgentPool
from ferry.engine.db import Database
from ferry.engine.db.records import HostRecord, HostSchedule, HostStatus, VmPlacement, VmRecord, VmStatus
from ferry.engine.monitor_batch import Answer, record_answers

log = logging.getLogger("ferry.engine.monitor")

AgentFactory = Callable[[str], Any]   # agent URL -> object with .call(method, params)
MISSING_POLLS_BEFORE_DOWN = 2         # a VM absent this many polls in a row is down
DEFAULT_WORKERS = 32                  # agent refreshes at once: each mostly waits on the agent's round trips
BATCH_MAX = 200                       # host answers recorded in one transaction at most
BATCH_WAIT_S = 0.2                    # how long the writer gathers answers before it records them

# Agent VM status (Vdsm's names) -> inventory status.
AGENT_VM_STATUS = {"Up": VmStatus.UP, "Paused": VmStatus.PAUSED, "Migration Source": VmStatus.MIGRATING}


def agent_client(url: str, timeout: float = 10.0) -> JsonRpcClient:
    from ferry.pki import engine_client_tls  # the engine's certificate (engine role) for https:// agents

    return JsonRpcClient(url, timeout=timeout, tls=engine_client_tls())


class PlacementGuard:
    """VMs someone is moving right now (names -> when they last changed); the monitor does not
    touch a VM that changed after its sample was taken."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy: dict[str, int] = {}
        self._changed: dict[str, float] = {}

    def busy(self, vm: str) -> _Busy:
        return _Busy(self, vm)

    def _enter(self, vm: str) -> None:
        with self._lock:
            self._busy[vm] = self._busy.get(vm, 0) + 1
            self._changed[vm] = time.time()

    def _leave(self, vm: str) -> None:
        with self._lock:
            self._busy[vm] -= 1
            if not self._busy[vm]:
                del self._busy[vm]
            self._changed[vm] = time.time()

    def untouchable(self, sampled_at: float) -> set[str]:
        """VMs busy now or changed since `sampled_at`."""
        with self._lock:
            return set(self._busy) | {vm for vm, t in self._changed.items() if t >= sampled_at}


class _Busy:
    def __init__(self, guard: PlacementGuard, vm: str):
        self.guard, self.vm = guard, vm

    def __enter__(self) -> None:
        self.guard._enter(self.vm)

    def __exit__(self, *exc: object) -> None:
        self.guard._leave(self.vm)


@dataclass(frozen=True)
class VmChange:
    vm: str
    host: str | None
    status: VmStatus
    why: str


def reconcile_vms(host: str, listed: Iterable[Mapping[str, Any]], inventory: Iterable[VmRecord | VmPlacement],
                  skip: set[str], missing_polls: dict[str, int]) -> list[VmChange]:
    """Changes to the inventory from one host's Host.getVMList answer.

    A listed VM (matched by UUID) is placed on `host` with the agent's status; an inventory VM
    placed on `host` but not listed is counted missing, and after MISSING_POLLS_BEFORE_DOWN polls
    in a row it is DOWN. VMs in `skip` are left alone. `missing_polls` (name -> count) is updated
    in place. VMs the agent runs that the inventory does not know are ignored.
    """
    by_uuid = {str(v.get("vmID")): v for v in listed}
    changes: list[VmChange] = []
    for vm in inventory:
        if vm.name in skip:
            missing_polls.pop(vm.name, None)
            continue
        seen = by_uuid.get(vm.uuid)
        if seen is not None:
            missing_polls.pop(vm.name, None)
            status = AGENT_VM_STATUS.get(str(seen.get("status")))
            if status is None or status is VmStatus.MIGRATING:
                continue  # Down/destination-side entries and migrations say nothing new
            if vm.host != host or vm.status is not status:
                changes.append(VmChange(vm.name, host, status, f"agent on {host} reports it {seen.get('status')}"))
        elif vm.host == host:
            count = missing_polls.get(vm.name, 0) + 1
            missing_polls[vm.name] = count
            if count >= MISSING_POLLS_BEFORE_DOWN:
                missing_polls.pop(vm.name, None)
                changes.append(VmChange(vm.name, None, VmStatus.DOWN, f"agent on {host} no longer runs it"))
    return changes


def host_status_after(current: HostStatus, reachable: bool) -> HostStatus:
    """UP when the agent answered, DOWN when not; the maintenance states are the admin's and stay."""
    if current.in_maintenance:
        return current
    return HostStatus.UP if reachable else HostStatus.DOWN


class HostMonitor:
    """Refreshes every host every `interval` s: a bounded pool of `workers` threads asks the
    agents, one writer thread records their answers in batches (ferry.engine.monitor_batch).

    Why a pool: one refresh waits on three agent round trips; one at a time, 2,000 hosts take
    minutes per round (measured: docs/benchmarks.md, scale). Why one writer: recording each
    answer in its own transaction was most of the engine's CPU at 2,000 hosts; a batch of
    answers is a few statements. A host is never refreshed twice at once (a per-host lock for
    the agent calls; the loop skips hosts whose last answer is not written yet), an answer older
    than one already written for its host is dropped, and the default agent client keeps one
    connection per agent alive (ferry.engine.agent_pool).

    `hosts_to_refresh` is the one place that says which hosts this engine refreshes (all of
    them; several engines may each take their share there).
    """

    def __init__(self, db: Database, *, guard: PlacementGuard | None = None,
                 agent: AgentFactory | None = None, interval: float = 5.0, workers: int = DEFAULT_WORKERS,
                 share: Callable[[list[str]], list[str]] | None = None):
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.db = db
        self.guard = guard or PlacementGuard()
        self._pool_client = AgentPool() if agent is None else None
        self.agent = agent or self._pool_client
        self.interval = interval
        self.workers = workers
        self.share = share   # several engines (issue 18): which of the hosts this engine refreshes now
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._writer: threading.Thread | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._answers: queue.Queue[Answer] = queue.Queue()
        self._missing: dict[str, int] = {}
        self._errors: dict[str, str] = {}
        self._lock = threading.Lock()            # guards the dicts and the per-host locks below
        self._host_locks: dict[str, threading.Lock] = {}
        self._in_flight: set[str] = set()
        self._last_start: dict[str, float] = {}
        self._written: dict[str, float] = {}     # host -> sampled_at of the last answer recorded

    # ---- threads -------------------------------------------------------------------------------
    def start(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="host-refresh")
        self._writer = threading.Thread(target=self._write_loop, name="host-monitor-writer", daemon=True)
        self._writer.start()
        self._thread = threading.Thread(target=self._loop, name="host-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in (self._thread, self._writer):
            if thread is not None:
                thread.join(timeout=15)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        if self._pool_client is not None:
            self._pool_client.close()

    def hosts_to_refresh(self, store) -> list[HostSchedule]:  # noqa: ANN001
        """The hosts this engine's monitor refreshes: every host in the inventory with one engine
        (`share` None); with several engines on one database, only this engine's share of them
        (ferry.engine.ownership.hosts_to_refresh: rendezvous hash over the live engines)."""
        hosts = store.hosts.schedule()
        if self.share is None:
            return hosts
        keep = set(self.share([h.name for h in hosts]))
        return [h for h in hosts if h.name in keep]

    def _due(self, host: HostSchedule, now: float) -> bool:
        if not host.refreshed or host.status is HostStatus.UNKNOWN:
            return now - self._last_start.get(host.name, -1e9) >= 1.0
        return now - self._last_start.get(host.name, -1e9) >= self.interval

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                with self.db.reads() as store:
                    hosts = self.hosts_to_refresh(store)
                now = time.monotonic()
                # the longest-waiting first: when a round cannot finish within the interval, no
                # host waits more than one round behind the others
                hosts = sorted(hosts, key=lambda h: self._last_start.get(h.name, -1e9))
                for host in hosts:
                    if self._stop.is_set():
                        return
                    with self._lock:
                        if host.name in self._in_flight or not self._due(host, now):
                            continue
                        self._in_flight.add(host.name)
                        self._last_start[host.name] = now
                    self._executor.submit(self._fetch_quietly, host.name, host.agent_url)
            except Exception:  # noqa: BLE001 - the monitor must outlive a bad poll
                log.exception("host monitor cycle failed")
            self._stop.wait(1.0)

    def _fetch_quietly(self, name: str, agent_url: str) -> None:
        try:
            with self._host_lock(name):
                answer = self._ask(name, agent_url)
        except Exception as exc:  # noqa: BLE001
            log.warning("refreshing host %s failed: %s", name, exc)
            with self._lock:
                self._in_flight.discard(name)
            return
        self._answers.put(answer)   # in flight until the writer has recorded it

    def _write_loop(self) -> None:
        while not self._stop.is_set():
            try:
                batch = [self._answers.get(timeout=0.5)]
            except queue.Empty:
                continue
            deadline = time.monotonic() + BATCH_WAIT_S
            while len(batch) < BATCH_MAX:
                try:
                    batch.append(self._answers.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            try:
                self._record(batch)
            except Exception:  # noqa: BLE001 - one bad answer must not lose the batch's others
                log.exception("recording %d host answers at once failed; recording them one by one", len(batch))
                for answer in batch:
                    try:
                        self._record([answer])
                    except Exception as exc:  # noqa: BLE001
                        log.warning("recording host %s failed: %s", answer.host, exc)
            finally:
                with self._lock:
                    self._in_flight.difference_update(a.host for a in batch)

    def _host_lock(self, name: str) -> threading.Lock:
        with self._lock:
            return self._host_locks.setdefault(name, threading.Lock())

    # ---- asking and recording ------------------------------------------------------------------
    def refresh(self, name: str, agent_url: str | None = None) -> HostRecord:
        """Ask the host's agent now and record what it says (or that it is unreachable)."""
        with self._host_lock(name):
            if agent_url is None:
                with self.db.unit_of_work() as store:
                    agent_url = store.hosts.get(name).agent_url
            answer = self._ask(name, agent_url)
            self._record([answer])
        with self.db.unit_of_work() as store:
            return store.hosts.get(name)

    def _ask(self, name: str, agent_url: str) -> Answer:
        sampled_at = time.time()
        client = self.agent(agent_url)
        try:
            caps = client.call("Host.getCapabilities", {})
            stats = client.call("Host.getStats", {})
            vms = client.call("Host.getVMList", {}).get("vms", [])
        except JsonRpcError as exc:
            with self._lock:
                if self._errors.get(name) != exc.message:
                    log.warning("host %s: agent unreachable: %s", name, exc.message)
                self._errors[name] = exc.message
            return Answer(name, sampled_at, error=exc.message)
        with self._lock:
            if self._errors.pop(name, None) is not None:
                log.info("host %s: agent reachable again", name)
        capabilities = dict(caps or {})
        if isinstance(stats, dict):
            capabilities["memFree"] = stats.get("memFree")
            capabilities["stats"] = stats
        return Answer(name, sampled_at, capabilities, list(vms))

    def _record(self, answers: list[Answer]) -> None:
        with self._lock:   # an answer older than one recorded already says nothing new
            answers = [a for a in answers if a.sampled_at >= self._written.get(a.host, -1.0)]
        if not answers:
            return
        with self.db.unit_of_work() as store:
            record_answers(store, answers, untouchable=self.guard.untouchable, reconcile=reconcile_vms,
                           missing=self._missing, lock=self._lock, status_after=host_status_after)
        with self._lock:
            for a in answers:
                self._written[a.host] = max(a.sampled_at, self._written.get(a.host, -1.0))
