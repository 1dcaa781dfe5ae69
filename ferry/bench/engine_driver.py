"""Ferry through its engine: REST POST /api/vms/{vm}/migrate, then GET /api/migrations/{id}/wait.

The benchmark's mode becomes engine settings, so the engine's own planner builds VM.migrate:
two custom policies without convergence actions (`bench-plain`, `bench-zerocopy`: one migration
at a time, no auto-converge, no compression), a cluster `bench` whose parallel setting is
DISABLED or CUSTOM:N and whose bandwidth is a CUSTOM value far above the lab link (so nothing
caps the migration and virsh gets the same --bandwidth). Lab guests are registered in the
engine's inventory as running where the lab booted them; after a bare-virsh migration moved one
behind the engine's back, both hosts are refreshed (outside the timed span) before the next
Ferry migration. The bare-virsh baseline is given the parameters of the engine's own plan.

`engine_driver(...)` starts a private engine process (temporary SQLite database, an admin
token issued the way docs/security.md says) or uses a running one (--engine-url, token from
FERRY_ENGINE_TOKEN or the config file), and stops what it started, by pid.
"""
from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from ferry.bench.drivers import DriverOutcome
from ferry.bench.matrix import Mode
from ferry.client.follow import wait_for
from ferry.common.errors import OperationFailed
from ferry.lab.plan import HostPlan

CLUSTER = "bench"
PLAIN_POLICY = "bench-plain"
ZEROCOPY_POLICY = "bench-zerocopy"
UNCAPPED_MBPS = 80_000          # 10000 MiB/s: far above what the lab's loopback migrations reach


def bench_policy(name: str, zerocopy: bool) -> dict:
    return {"name": name, "description": "benchmark: no convergence actions, one migration at a time",
            "max_migrations": 1, "auto_converge": False, "compression": False, "guest_events": False,
            "zerocopy": zerocopy, "init": [], "stalling": []}


def cluster_settings(mode: Mode) -> dict:
    """The cluster settings that make the engine's planner produce `mode` (pure)."""
    parallel = {"mode": "CUSTOM", "connections": mode.parallel} if mode.parallel else {"mode": "DISABLED"}
    return {"policy": ZEROCOPY_POLICY if mode.zerocopy else PLAIN_POLICY, "parallel": parallel,
            "bandwidth": {"mode": "CUSTOM", "custom_mbps": UNCAPPED_MBPS}, "encrypted": False,
            "auto_converge": False, "compressed": False}


def guest_body(guest, host: HostPlan) -> dict:
    """POST /api/vms for a guest the lab booted: its spec, running on `host`."""
    s = guest.spec
    body = {"name": s.name, "cluster": CLUSTER, "memory_mib": s.memory_mib, "vcpus": s.vcpus, "kernel": s.kernel,
            "initrd": s.initrd, "cmdline": s.cmdline, "uuid": s.effective_uuid, "accel": s.accel,
            "memtune_hard_limit_kib": s.memtune_hard_limit_kib, "emulator": s.emulator, "machine": s.machine,
            "host": host.name, "status": "UP"}
    return {k: v for k, v in body.items() if v is not None}


class EngineDriver:
    name = "ferry-engine"

    def __init__(self, client, poll_s: float = 0.1, timeout_s: float = 900.0):
        self.client = client
        self.poll_s = poll_s
        self.timeout_s = timeout_s
        self._mode: Mode | None = None

    # ---- inventory -----------------------------------------------------------------------------
    def setup(self, hosts: list[HostPlan], agent_urls: dict[str, str]) -> None:
        existing = {p["name"] for p in self.client.get("/api/policies")}
        for name, zc in ((PLAIN_POLICY, False), (ZEROCOPY_POLICY, True)):
            if name in existing:
                self.client.put(f"/api/policies/{name}", bench_policy(name, zc))
            else:
                self.client.post("/api/policies", bench_policy(name, zc))
        settings = cluster_settings(Mode("plain"))
        clusters = {c["name"] for c in self.client.get("/api/clusters")}
        if CLUSTER in clusters:
            self.client.patch(f"/api/clusters/{CLUSTER}", settings)
        else:
            self.client.post("/api/clusters", {"name": CLUSTER, **settings})
        known = {h["name"] for h in self.client.get("/api/hosts")}
        for h in hosts:
            fields = {"address": h.address, "agent_url": agent_urls.get(h.name) or h.agent_url}
            if h.name in known:
                self.client.patch(f"/api/hosts/{h.name}", fields)
            else:
                self.client.post("/api/hosts", {"name": h.name, "cluster": CLUSTER, **fields})
            host = self.client.post(f"/api/hosts/{h.name}/refresh", {})
            if host.get("status") != "UP":
                raise OperationFailed(f"the engine cannot reach {h.name}'s agent: {host}")
        self.hosts = hosts

    def adopt(self, guest, host: HostPlan) -> None:
        try:
            self.client.delete(f"/api/vms/{guest.name}")
        except Exception:  # noqa: BLE001 - not there yet
            pass
        self.client.post("/api/vms", guest_body(guest, host))

    def release(self, vm: str) -> None:
        for h in self.hosts:
            self._refresh(h)
        try:
            self.client.delete(f"/api/vms/{vm}")
        except Exception:  # noqa: BLE001 - already gone
            pass

    def _refresh(self, host: HostPlan) -> None:
        self.client.post(f"/api/hosts/{host.name}/refresh", {})

    # ---- a mode's parameters, as the engine plans them -----------------------------------------
    def params_for(self, vm: str, mode: Mode, src: HostPlan, dst: HostPlan) -> dict:
        if mode != self._mode:
            self.client.patch(f"/api/clusters/{CLUSTER}", cluster_settings(mode))
            self._mode = mode
        self._refresh(src)
        self._refresh(dst)
        plan = self.client.post(f"/api/vms/{vm}/plan", {"to": dst.name})
        # where to goes per direction (the pair runs both ways); the rest is the engine's plan
        return {k: v for k, v in plan["params"].items() if k not in ("dst", "dstqemu")}

    # ---- one migration -------------------------------------------------------------------------
    def migrate(self, *, vm: str, vm_id: str, src: HostPlan, dst: HostPlan, params: dict) -> DriverOutcome:
        t0, sent_at = time.monotonic(), time.time()
        try:
            record = self.client.post(f"/api/vms/{vm}/migrate", {"to": dst.name})
        except Exception as exc:  # noqa: BLE001 - a refusal is this run's outcome
            return DriverOutcome(False, time.monotonic() - t0, "refused", str(exc))
        # the way `ferry migrate --wait` follows it: long-polled, so the end is seen when the
        # engine records it (plain GETs every poll_s with an engine that has no long poll)
        record = wait_for(self.client, record, timeout=self.timeout_s - (time.monotonic() - t0),
                          poll_s=self.poll_s)
        wall, saw_end_at = time.monotonic() - t0, time.time()
        plan = record.get("plan") or {}
        ok = record["state"] == "SUCCEEDED"
        return DriverOutcome(ok, wall, record["state"].lower(), record.get("error"),
                             list(plan.get("libvirt_flags") or []), dict(plan.get("libvirt_typed_params") or {}),
                             {"migration_id": record["id"], "result": record.get("result"),
                              "attempts": record.get("attempts"),
                              "timeline": engine_timeline(record, sent_at, saw_end_at)})


def engine_timeline(record: dict, sent_at: float, saw_end_at: float) -> dict:
    """When the benchmark sent the request and saw the end, and when the engine created,
    started and finished the migration's record (epoch seconds): see ferry.bench.timeline."""
    times = {"bench_sent_at": sent_at, "bench_saw_end_at": saw_end_at}
    for key in ("created_at", "started_at", "finished_at"):
        if record.get(key):
            times[f"engine_{key}"] = datetime.fromisoformat(record[key]).timestamp()
    return times


@contextmanager
def engine_driver(lab, engine_url: str | None, progress: Callable[[str], None]) -> Iterator[EngineDriver]:
    from ferry.client.engine_client import EngineClient

    proc = None
    if engine_url:
        client = EngineClient(engine_url, timeout=60)
    else:
        from ferry.engine.db import upgrade_database
        from ferry.engine.process import free_port, start_engine
        from ferry.engine.services.tokens import issue_token

        work = Path(lab.plan.dir) / "bench-engine"
        work.mkdir(parents=True, exist_ok=True)
        db = work / "engine.db"
        for f in (db, Path(f"{db}-journal")):
            f.unlink(missing_ok=True)
        db_url = f"sqlite:///{db}"
        upgrade_database(db_url)
        token = issue_token(db_url, "admin", "bench")[0]
        port = free_port()
        log = work / "engine.log"
        log.unlink(missing_ok=True)  # this run's log only
        proc = start_engine(db_url, log, port=port, monitor_interval=2, images_dir=lab.plan.images_dir)
        url = f"http://127.0.0.1:{port}"
        progress(f"engine: started on {url} (pid {proc.pid}, log {log})")
        client = EngineClient(url, token, timeout=60)
    try:
        from ferry.bench.drivers import lab_agents

        driver = EngineDriver(client)
        driver.setup(lab.hosts()[:2], lab_agents(lab)[0])
        yield driver
    finally:
        client.close()
        if proc is not None:
            _stop(proc)
            progress(f"engine: stopped (pid {proc.pid})")


def _stop(proc: subprocess.Popen) -> None:
    from ferry.lab import procs

    if proc.poll() is None:
        procs.stop(proc.pid, timeout=15)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
