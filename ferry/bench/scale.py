"""`ferry bench scale`: the engine on a real PostgreSQL against 250..2,000 simulated hosts.

For each size: a fresh database on a throw-away PostgreSQL server (ferry.bench.scale_postgres,
the one the store tests use), a simulated fleet of that many hosts with 20 VMs each (ferry.sim,
the real agent protocol over mutual TLS; loopback only), its inventory imported, then a real
engine process (`ferry engine run`, monitor interval 5 s) and the measurements of
ferry.bench.scale_measure: refresh period and engine CPU over a window, API latency under 50
concurrent clients, and the time to plan a drain of 100 hosts (2,000 VMs). Everything it starts
it stops, by pid.

There is no drain/maintenance operation in the engine yet, so "planning a drain" is measured as
planning one migration per VM on the 100 drained hosts with the engine's own destination choice
(drained hosts excluded) and planner, as the REST API would for 2,000 requests.
"""
from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from ferry.bench.scale_measure import api_latency, planning_time, refresh_and_cpu
from ferry.bench.scale_postgres import PostgresServer

SIZES = (250, 500, 1000, 2000)
VMS_PER_HOST = 20
DRAIN_HOSTS = 100
PER_VM_SAMPLE_HOSTS = 1      # the per-request path is timed on 20 VMs and scaled to the drain
API_REQUESTS_EACH = 20
MONITOR_INTERVAL_S = 5.0
WARMUP_TIMEOUT_S = float(os.environ.get("FERRY_BENCH_SCALE_WARMUP_S") or 90.0)


def plan_drain_per_vm(db, drained: list[str]) -> list[tuple[str, str]]:  # noqa: ANN001
    """One plan per VM on the drained hosts, each as a REST migration request would make it."""
    from ferry.engine.services.planning import pick_destination, plan_for_vm

    out = []
    exclude = frozenset(drained)
    with db.unit_of_work() as store:
        for host in drained:
            for vm in store.vms.list(host=host):
                dest = pick_destination(store, vm, exclude=exclude)
                plan = plan_for_vm(store, vm.name, to=dest.name)
                out.append((vm.name, plan.destination))
    return out


def _guarded(measure: Callable[[], dict]) -> dict:
    """A measurement, or the reason it could not be made (e.g. no host up to plan towards)."""
    from ferry.common.errors import FerryError

    try:
        return measure()
    except FerryError as exc:
        return {"error": str(exc)[:300]}


def _wait_refreshed(db, hosts: int, timeout: float) -> tuple[float, int]:  # noqa: ANN001
    from ferry.bench.scale_measure import _host_times

    t0 = time.monotonic()
    done = 0
    while time.monotonic() - t0 < timeout:
        done = sum(1 for at in _host_times(db).values() if at is not None)
        if done >= hosts:
            break
        time.sleep(1.0)
    return time.monotonic() - t0, done


def _api_paths(inventory: dict) -> list[str]:
    hosts = [h["name"] for h in inventory["hosts"]]
    vms = [v["name"] for v in inventory["vms"]]
    paths = []
    for i in range(200):
        paths += [f"/api/hosts/{hosts[(i * 7) % len(hosts)]}", f"/api/vms/{vms[(i * 13) % len(vms)]}"]
        if i % 4 == 0:
            paths += ["/api/migrations?limit=50", "/api/events?limit=50"]
    return paths


def one_size(pg: PostgresServer, hosts: int, *, lab: int, window_s: float, work_dir: Path,
             plan_all: Callable, progress: Callable[[str], None]) -> dict:
    from ferry.engine.db import Database, upgrade_database
    from ferry.engine.process import free_port, start_engine
    from ferry.engine.services.tokens import issue_token
    from ferry.lab import procs
    from ferry.sim import control

    name = f"ferry_scale_{hosts}"
    pg.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    pg.admin(f'CREATE DATABASE "{name}"')
    url = pg.url(name)
    upgrade_database(url)
    db = Database(url)
    result: dict = {"hosts": hosts, "vms": hosts * VMS_PER_HOST}
    running = control.start(hosts, hosts * VMS_PER_HOST, lab=lab, progress=progress)
    proc = None
    try:
        inventory = json.loads(running.inventory_path.read_text())
        t = time.monotonic()
        control.import_inventory(db, inventory)
        result["import_s"] = round(time.monotonic() - t, 1)
        progress(f"{hosts} hosts: inventory imported in {result['import_s']} s")
        token = issue_token(url, "admin", "bench-scale")[0]
        port = free_port()
        proc = start_engine(url, work_dir / f"engine-{hosts}.log", port=port, monitor_interval=MONITOR_INTERVAL_S)
        warm, done = _wait_refreshed(db, hosts, WARMUP_TIMEOUT_S)
        result["first_refresh_all_s"] = round(warm, 1) if done >= hosts else None
        result["refreshed_after_warmup"] = done
        progress(f"{hosts} hosts: {done} refreshed once after {warm:.0f} s; measuring for {window_s:.0f} s")
        result["refresh"] = refresh_and_cpu(db, proc.pid, window_s)
        progress(f"{hosts} hosts: refresh {result['refresh']}")
        result["api"] = api_latency(f"http://127.0.0.1:{port}", token, _api_paths(inventory),
                                    requests_each=API_REQUESTS_EACH)
        progress(f"{hosts} hosts: API {result['api']}")
        drained = [h["name"] for h in inventory["hosts"][:DRAIN_HOSTS]]
        result["planning"] = _guarded(lambda: planning_time(db, drained, plan_all))
        progress(f"{hosts} hosts: planning {result['planning']}")
        sample = _guarded(lambda: planning_time(db, drained[:PER_VM_SAMPLE_HOSTS], plan_drain_per_vm, repeats=0))
        if "seconds" in sample:
            sample["estimate_for_drain_s"] = round(sample["seconds"] * DRAIN_HOSTS / PER_VM_SAMPLE_HOSTS, 1)
        result["planning_per_vm_sample"] = sample
        progress(f"{hosts} hosts: per-VM planning sample {sample}")
    finally:
        if proc is not None:
            procs.stop(proc.pid, timeout=15)
            proc.wait(timeout=5)
        control.stop(lab)
        db.engine.dispose()
        pg.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return result


def run_scale(sizes: tuple[int, ...] = SIZES, *, lab: int, window_s: float = 30.0, label: str = "run",
              work_dir: Path, plan_all: Callable = plan_drain_per_vm,
              progress: Callable[[str], None] = lambda _m: None) -> dict:
    work_dir.mkdir(parents=True, exist_ok=True)

    def interrupted(signum, frame):  # noqa: ANN001, ARG001 - SIGTERM stops what was started, by pid
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    pg = PostgresServer(max_connections=200)
    pg.start()
    try:
        results = [one_size(pg, n, lab=lab, window_s=window_s, work_dir=work_dir, plan_all=plan_all,
                            progress=progress) for n in sizes]
    finally:
        pg.stop()
    return {"kind": "scale", "label": label, "at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "monitor_interval_s": MONITOR_INTERVAL_S, "window_s": window_s, "sizes": results}


def plan_drain_batch(db, drained: list[str]) -> list[tuple[str, str]]:  # noqa: ANN001
    """The engine's batch planning of a drain (ferry.engine.services.bulk_planning)."""
    from ferry.engine.services.bulk_planning import plan_hosts_empty

    with db.unit_of_work() as store:
        plans, _stuck = plan_hosts_empty(store, drained)
    return [(p.vm, p.destination) for p in plans]
