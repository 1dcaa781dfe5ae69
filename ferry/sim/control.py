"""Start and stop a simulated fleet, and import its inventory (scale tests only: see ferry.sim).

`start` plans the fleet (ferry.sim.fleet), issues host certificates from the engine CA,
starts the host processes (ferry.sim.host_process) and waits until each serves, then writes
inventory.json (what `import_inventory` puts in an engine database). `stop` ends exactly the
processes it started, by the pids it recorded (each checked to still be a simulator process).
Everything lives in <FERRY_STATE_DIR>/sim-<lab>/.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ferry.common.errors import OperationFailed
from ferry.pki.layout import DEFAULT_STATE_DIR, EnginePki, pki_dir
from ferry.sim import fleet as fleet_mod
from ferry.sim.certs import ensure_host_certs

MODULE = "ferry.sim.host_process"
START_TIMEOUT_S = 300.0


def sim_dir(lab: int) -> Path:
    return Path(os.environ.get("FERRY_STATE_DIR") or DEFAULT_STATE_DIR) / f"sim-{lab}"


@dataclass(frozen=True)
class Running:
    sim_dir: Path
    inventory_path: Path
    pids: tuple[int, ...]
    hosts: int
    vms: int


def _is_ours(pid: int) -> bool:
    try:
        return MODULE.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def start(hosts: int, vms: int, *, lab: int, processes: int | None = None,
          progress: Callable[[str], None] = lambda _m: None) -> Running:
    base = sim_dir(lab)
    if running_pids(lab):
        raise OperationFailed(f"a simulated fleet of lab {lab} is running already: `ferry lab sim --down` first")
    processes = processes or max(1, min(8, (hosts + 499) // 500))
    plan = fleet_mod.plan_fleet(hosts, vms, lab=lab, processes=processes)
    run_dir = base / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in run_dir.glob("proc-*"):
        stale.unlink()
    t0 = time.monotonic()
    issued = ensure_host_certs(EnginePki(pki_dir()), base, [(h.name, h.address) for h in plan])
    progress(f"host certificates: {issued} issued, {hosts - issued} kept ({time.monotonic() - t0:.1f} s)")
    plan_path = run_dir / "plan.json"
    plan_path.write_text(json.dumps({"run_dir": str(run_dir), "sim_dir": str(base),
                                     "hosts": [h.to_wire() for h in plan]}))
    procs = []
    for i in range(processes):
        with open(run_dir / f"proc-{i}.out", "ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", MODULE, str(plan_path), str(i)], stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        procs.append(proc)
    pids = [p.pid for p in procs]
    (run_dir / "pids.json").write_text(json.dumps(pids))
    deadline = time.monotonic() + START_TIMEOUT_S
    for i, proc in enumerate(procs):
        while not (run_dir / f"proc-{i}.ready").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                stop(lab)
                tail = (run_dir / f"proc-{i}.out").read_text(errors="replace")[-1500:]
                raise OperationFailed(f"simulator process {i} did not start; its output:\n{tail}")
            time.sleep(0.2)
    inventory_path = base / "inventory.json"
    inventory_path.write_text(json.dumps(fleet_mod.inventory(plan, lab=lab)))
    progress(f"{hosts} simulated hosts, {vms} VMs in {processes} processes ({time.monotonic() - t0:.1f} s); "
             f"inventory: {inventory_path}")
    return Running(base, inventory_path, tuple(pids), hosts, vms)


def running_pids(lab: int) -> list[int]:
    path = sim_dir(lab) / "run" / "pids.json"
    try:
        pids = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return [p for p in pids if isinstance(p, int) and _is_ours(p)]


def stop(lab: int, timeout: float = 15.0) -> int:
    """SIGTERM to each recorded simulator process (SIGKILL after `timeout`); how many ran."""
    pids = running_pids(lab)
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for pid in pids:
        while _is_ours(pid) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.1)
        if _is_ours(pid):
            os.kill(pid, signal.SIGKILL)
        _reap(pid)
    (sim_dir(lab) / "run" / "pids.json").unlink(missing_ok=True)
    return len(pids)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def import_inventory(db, inventory: dict, *, batch: int = 5000) -> tuple[int, int]:  # noqa: ANN001
    """Put the fleet's cluster, hosts and VMs into an empty engine database; returns (hosts, VMs).

    The cluster goes through the engine's repository. Hosts and VMs are inserted in bulk (one
    multi-row INSERT per batch) with the values the repositories would store (each VM's spec is
    checked and normalised by VmSpec, status UP on its host), because adding 40,000 VMs one by
    one through the repositories takes the better part of an hour on this machine (27 ms each,
    measured at 5,000). For the simulated fleet only: real inventories go through the API.
    """
    from sqlalchemy import insert, select

    from ferry.common.vmspec import VmSpec
    from ferry.engine.db import models as m

    with db.unit_of_work() as store:
        store.clusters.create(inventory["cluster"])
    now = datetime.now(UTC)
    with db.session() as session:
        cluster_id = session.scalars(select(m.Cluster.id).where(m.Cluster.name == inventory["cluster"])).one()
        rows = [{"name": h["name"], "cluster_id": cluster_id, "address": h["address"], "agent_url": h["agent_url"],
                 "migration_address": None, "migration_network_up": False,
                 "link_speed_mbps": h.get("link_speed_mbps"), "status": "UNKNOWN", "created_at": now}
                for h in inventory["hosts"]]
        for i in range(0, len(rows), batch):
            session.execute(insert(m.Host), rows[i:i + batch])
        host_ids = dict(session.execute(select(m.Host.name, m.Host.id)).all())
    rows = []
    for v in inventory["vms"]:
        spec = VmSpec.from_dict({k: v[k] for k in ("name", "uuid", "memory_mib", "vcpus", "kernel")})
        data = spec.to_dict()
        data["uuid"] = spec.effective_uuid
        rows.append({"name": spec.name, "uuid": spec.effective_uuid, "cluster_id": cluster_id,
                     "host_id": host_ids[v["host"]], "status": "UP", "memory_mib": spec.memory_mib,
                     "vcpus": spec.vcpus, "spec": data, "created_at": now})
    for i in range(0, len(rows), batch):
        with db.session() as session:
            session.execute(insert(m.Vm), rows[i:i + batch])
    return len(inventory["hosts"]), len(rows)
