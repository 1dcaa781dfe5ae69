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
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ferry.common.errors import NotFound
from ferry.common.jsonrpc import JsonRpcClient, JsonRpcError
from ferry.engine.agent_pool import AgentPool
from ferry.engine.db import Database
from ferry.engine.db.records import HostRecord, HostSchedule, HostStatus, VmRecord, VmStatus
from ferry.engine.services.inventory import record_host_answer

log = logging.getLogger("ferry.engine.monitor")

AgentFactory = Callable[[str], Any]   # agent URL -> object with .call(method, params)
MISSING_POLLS_BEFORE_DOWN = 2         # a VM absent this many polls in a row is down
DEFAULT_WORKERS = 32                  # refreshes at once: each mostly waits on agent and database round trips

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


def reconcile_vms(host: str, listed: Iterable[Mapping[str, Any]], inventory: Iterable[VmRecord],
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
    """Refreshes every host every `interval` s through a bounded pool of `workers` threads.

    Why a pool: one refresh waits on three agent round trips and two database transactions; one
    at a time, 2,000 hosts take minutes per round (measured: docs/benchmarks.md, scale). A host
    is never refreshed twice at once (a per-host lock; the loop also skips hosts in flight), and
    the default agent client keeps one connection per agent alive (ferry.engine.agent_pool).
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
        self._executor: ThreadPoolExecutor | None = None
        self._missing: dict[str, int] = {}
        self._errors: dict[str, str] = {}
        self._lock = threading.Lock()            # guards the dicts and the per-host locks below
        self._host_locks: dict[str, threading.Lock] = {}
        self._in_flight: set[str] = set()
        self._last_start: dict[str, float] = {}

    # ---- thread --------------------------------------------------------------------------------
    def start(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="host-refresh")
        self._thread = threading.Thread(target=self._loop, name="host-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        if self._pool_client is not None:
            self._pool_client.close()

    def _due(self, host: HostSchedule, now: float) -> bool:
        if not host.refreshed or host.status is HostStatus.UNKNOWN:
            return now - self._last_start.get(host.name, -1e9) >= 1.0
        return now - self._last_start.get(host.name, -1e9) >= self.interval

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                with self.db.unit_of_work() as store:
                    hosts = self._mine(store.hosts.schedule())
                now = time.monotonic()
                for host in hosts:
                    if self._stop.is_set():
                        return
                    with self._lock:
                        if host.name in self._in_flight or not self._due(host, now):
                            continue
                        self._in_flight.add(host.name)
                        self._last_start[host.name] = now
                    self._executor.submit(self._refresh_quietly, host.name, host.agent_url)
            except Exception:  # noqa: BLE001 - the monitor must outlive a bad poll
                log.exception("host monitor cycle failed")
            self._stop.wait(1.0)

    def _mine(self, hosts: list[HostSchedule]) -> list[HostSchedule]:
        """The hook of several engines on one database (ferry.engine.ownership.hosts_to_refresh):
        only this engine's share of the hosts; all of them with one engine (`share` None)."""
        if self.share is None:
            return hosts
        keep = set(self.share([h.name for h in hosts]))
        return [h for h in hosts if h.name in keep]

    def _refresh_quietly(self, name: str, agent_url: str | None = None) -> None:
        try:
            self.refresh(name, agent_url=agent_url)
        except Exception as exc:  # noqa: BLE001
            log.warning("refreshing host %s failed: %s", name, exc)
        finally:
            with self._lock:
                self._in_flight.discard(name)

    def _host_lock(self, name: str) -> threading.Lock:
        with self._lock:
            return self._host_locks.setdefault(name, threading.Lock())

    # ---- one host ------------------------------------------------------------------------------
    def refresh(self, name: str, agent_url: str | None = None) -> HostRecord:
        """Ask the host's agent now and record what it says (or that it is unreachable).
        The loop passes the agent URL it read, which saves a transaction per refresh."""
        with self._host_lock(name):
            if agent_url is None:
                with self.db.unit_of_work() as store:
                    agent_url = store.hosts.get(name).agent_url
            sampled_at = time.time()
            client = self.agent(agent_url)
            try:
                caps = client.call("Host.getCapabilities", {})
                stats = client.call("Host.getStats", {})
                vms = client.call("Host.getVMList", {}).get("vms", [])
            except JsonRpcError as exc:
                return self._unreachable(name, exc)
            with self._lock:
                if self._errors.pop(name, None) is not None:
                    log.info("host %s: agent reachable again", name)
            capabilities = dict(caps or {})
            if isinstance(stats, dict):
                capabilities["memFree"] = stats.get("memFree")
                capabilities["stats"] = stats
            with self.db.unit_of_work() as store:
                host = store.hosts.get(name)
                updated = record_host_answer(store, name, status=host_status_after(host.status, True),
                                             capabilities=capabilities)
                skip = self.guard.untouchable(sampled_at) | {
                    m.vm for m in store.migrations.list(active=True, limit=1000)}
                inventory = _inventory_for(store, name, vms)
                with self._lock:
                    changes = reconcile_vms(name, vms, inventory, skip, self._missing)
                for change in changes:
                    log.info("VM %s: now %s on %s (%s)", change.vm, change.status.value, change.host, change.why)
                    store.vms.update(change.vm, host=change.host, status=change.status.value)
            return updated

    def _unreachable(self, name: str, exc: JsonRpcError) -> HostRecord:
        with self._lock:
            if self._errors.get(name) != exc.message:
                log.warning("host %s: agent unreachable: %s", name, exc.message)
            self._errors[name] = exc.message
        with self.db.unit_of_work() as store:
            host = store.hosts.get(name)
            return store.hosts.update(name, status=host_status_after(host.status, False).value)


def _inventory_for(store, host: str, listed: Iterable[Mapping[str, Any]]) -> list[VmRecord]:  # noqa: ANN001
    """The inventory VMs one host's answer can change: those placed on it, and those it lists
    that the inventory places elsewhere (by UUID). Not the whole cluster: at 40,000 VMs reading
    them all for every host's refresh was most of the monitor's time."""
    placed = store.vms.list(host=host)
    known = {v.uuid for v in placed}
    others = []
    for entry in listed:
        uuid = str(entry.get("vmID"))
        if uuid in known:
            continue
        try:
            others.append(store.vms.get(uuid))
        except NotFound:
            continue  # a VM the inventory does not know: ignored (reconcile_vms's rule)
    return placed + others
