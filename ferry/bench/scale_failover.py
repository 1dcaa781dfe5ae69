"""The failover phase of the scale bench (issue 18 items 3-4): engines on one PostgreSQL over
simulated hosts, one killed with SIGKILL mid-drain.

`run_failover` starts a throw-away PostgreSQL server (ferry.bench.scale_postgres), a simulated
fleet (ferry.sim: the real agent protocol over mutual TLS), imports it, starts ENGINES engine
processes on the one database (ferry.bench.failover.EnginePair), and through the first engine
drains DRAINED hosts. Once migrations move data, the engine owning most of them is killed with
SIGKILL; the figures are the seconds until a survivor owns each of its drains and migrations
(the leases table), and until a survivor's log says it follows each of its migrations again.
When the drains are done, every VM of the drained hosts must run on exactly one other host,
asked of the simulated agents themselves (lost: anything else), and have had exactly one
VM.migrate sent per attempt (VM_MIGRATION_START events: duplicated, more than that).

`section` is the Markdown the scale section of docs/benchmarks.md carries from the stored runs
(docs/benchmarks/scale_failover-*.json); ferry.bench.scale_report appends it to its block.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

ENGINES = 3
HOSTS = 24
VMS_PER_HOST = 8
DRAINED = 2
BANDWIDTH_MBPS = 800          # 100 MiB/s per migration: a 4 GiB guest takes ~25 s, longer than a takeover
FINAL = ("DONE", "CANCELLED", "FAILED")
PREFIX = "scale_failover-"    # not "scale-*": those are the scale runs scale_report reads


def _wait(what: str, cond: Callable[[], object], timeout: float, poll: float = 0.5) -> object:
    deadline = time.monotonic() + timeout
    while not (value := cond()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(poll)
    return value


def _owned_by(db, engine_id: str) -> list[tuple[str, str]]:  # noqa: ANN001
    from ferry.engine.db import models as m

    with db.session() as s:
        return [(r.kind, r.key) for r in s.query(m.WorkLease).filter(m.WorkLease.owner == engine_id,
                                                                      m.WorkLease.kind != "engine")]


def _followed_s(logs: list[Path], ids: list[str], killed_at: float, timeout: float = 60.0) -> float | None:
    """Seconds from the kill until a survivor's log says it follows every one of `ids` again."""
    deadline = killed_at + timeout
    while time.monotonic() < deadline:
        lines = [ln for p in logs for ln in p.read_text(errors="replace").splitlines()
                 if "following it again taken over" in ln]
        if all(any(f"migration {i} of VM " in ln for ln in lines) for i in ids):
            return time.monotonic() - killed_at
        time.sleep(0.2)
    return None


def _copies(inventory: dict, names: set[str]) -> dict[str, list[str]]:
    """Where the simulated agents run each VM (Host.getVMList over mutual TLS)."""
    from ferry.engine.agent_pool import AgentPool

    where: dict[str, list[str]] = {n: [] for n in names}
    by_uuid = {v["uuid"]: v["name"] for v in inventory["vms"] if v["name"] in names}
    pool = AgentPool()
    try:
        for h in inventory["hosts"]:
            for vm in pool(h["agent_url"]).call("Host.getVMList", {}).get("vms", []):
                name = by_uuid.get(str(vm.get("vmID")))
                if name is not None and vm.get("status") in ("Up", "Paused"):
                    where[name].append(h["name"])
    finally:
        pool.close()
    return where


def drained_hosts(inventory: dict, n: int) -> list[str]:
    """The `n` hosts to drain: those with the biggest VMs, mixed sizes first, so that a migration
    long enough to be in flight at the takeover (~25 s for 4 GiB at BANDWIDTH_MBPS) is among them;
    the kill waits for one of the biggest to move data."""
    sizes: dict[str, set[int]] = {h["name"]: set() for h in inventory["hosts"]}
    for v in inventory["vms"]:
        sizes[v["host"]].add(v["memory_mib"])
    order = sorted(sizes, key=lambda h: (-max(sizes[h], default=0), -len(sizes[h])))
    return order[:n]


def run_failover(*, lab: int, work_dir: Path, engines: int = ENGINES, hosts: int = HOSTS,
                 vms_per_host: int = VMS_PER_HOST, drained: int = DRAINED,
                 progress: Callable[[str], None] = lambda _m: None) -> dict:
    from ferry.bench.failover import EnginePair, wait_takeover
    from ferry.bench.scale import _wait_refreshed
    from ferry.bench.scale_postgres import PostgresServer
    from ferry.client.engine_client import EngineClient
    from ferry.engine import audit
    from ferry.engine.db import Database
    from ferry.sim import control

    work_dir = work_dir / time.strftime("%Y%m%d-%H%M%S")   # fresh engine logs for each run
    work_dir.mkdir(parents=True, exist_ok=True)
    pg = PostgresServer(max_connections=200)
    pg.start()
    pg.admin('CREATE DATABASE "ferry_scale_failover"')
    url = pg.url("ferry_scale_failover")
    pair = EnginePair(url, work_dir, n=0, monitor_interval=5.0)
    pair.prepare()
    db = Database(url)
    running = control.start(hosts, hosts * vms_per_host, lab=lab, progress=progress)
    result: dict = {"kind": "scale-failover", "at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                    "engines": engines, "hosts": hosts, "vms": hosts * vms_per_host, "drained_hosts": drained,
                    "bandwidth_mbps": BANDWIDTH_MBPS, "load_before": os.getloadavg()}
    try:
        inventory = json.loads(running.inventory_path.read_text())
        control.import_inventory(db, inventory)
        for _ in range(engines):
            pair.start_one()
        warm, done = _wait_refreshed(db, hosts, 120)
        progress(f"{engines} engines, {hosts} hosts: {done} refreshed after {warm:.0f} s")
        first = EngineClient(pair.engines[0].url, pair.token, timeout=60)
        first.patch(f"/api/clusters/{inventory['cluster']}", {   # auto-converge: even 47 MiB/s dirtying converges
            "policy": "Very large VMs", "bandwidth": {"mode": "CUSTOM", "custom_mbps": BANDWIDTH_MBPS}})
        names = drained_hosts(inventory, drained)
        moving = {v["name"] for v in inventory["vms"] if v["host"] in names}
        for name in names:
            first.post(f"/api/hosts/{name}/maintenance", {"reason": "scale failover bench"})

        top = max(v["memory_mib"] for v in inventory["vms"] if v["host"] in names)
        big = {v["name"] for v in inventory["vms"] if v["host"] in names and v["memory_mib"] == top}

        def in_flight() -> list[dict]:   # a long one moving data: still in flight when the takeover comes
            ms = first.get("/api/migrations", params={"active": True, "limit": 500})
            return [m for m in ms if m["state"] == "RUNNING" and m["vm"] in big
                    and ((m.get("figures") or {}).get("data_processed") or 0)]
        _wait("a long migration moving data", in_flight, 600, 0.2)
        counts = {e.engine_id: len([w for w in _owned_by(db, e.engine_id) if w[0] == "migration"])
                  for e in pair.engines}
        victim = next(e for e in pair.engines if e.engine_id == max(counts, key=counts.get))
        work = _owned_by(db, victim.engine_id)
        their = [k for kind, k in work if kind == "migration"]
        killed_at = victim.kill9()
        progress(f"kill -9 {victim.engine_id}: it owned {len(work)} items ({len(their)} migrations)")
        took, now = wait_takeover(url, work, victim.engine_id, killed_at, timeout=90)
        survivors = [e for e in pair.engines if e is not victim]
        followed = _followed_s([e.log for e in survivors], their, killed_at)
        progress(f"taken over in {took:.1f} s, followed in {followed} s")
        client = EngineClient(survivors[0].url, pair.token, timeout=60)
        _wait("drains done", lambda: all(client.get(f"/api/hosts/{n}/maintenance")["state"] in FINAL
                                         for n in names), 900, 1.0)
        states = {n: client.get(f"/api/hosts/{n}/maintenance")["state"] for n in names}
        where = _copies(inventory, moving)
        lost = sorted(v for v, hs in where.items() if len(hs) != 1 or hs[0] in names)
        starts: dict[str, int] = {}
        attempts: dict[str, int] = {}
        succeeded: dict[str, int] = {}
        with db.unit_of_work() as store:
            for vm in moving:
                ms = store.migrations.list(vm=vm, limit=50)
                starts[vm] = sum(1 for m in ms for e in store.events.list(migration_id=m.id)
                                 if e.code == audit.VM_MIGRATION_START.code)
                attempts[vm] = sum(len(m.attempts or []) for m in ms)
                succeeded[vm] = sum(1 for m in ms if m.state.value == "SUCCEEDED")
        # sent twice: more VM.migrate sends than attempts recorded (a rerun to another host is an
        # attempt of its own), or moved by two migrations
        dup = sorted(v for v in moving if starts[v] > max(1, attempts[v]) or succeeded[v] > 1)
        result.update(victim=victim.engine_id, victim_items=len(work), victim_migrations=len(their),
                      takeover_s=round(took, 1), followed_s=None if followed is None else round(followed, 1),
                      new_owners=sorted(set(now.values()) - {None}), drain_states=states,
                      vms_moved=len(moving), lost=len(lost), lost_vms=lost[:10],
                      duplicated=len(dup), duplicated_vms=dup[:10],
                      reruns=sum(max(0, n - 1) for n in attempts.values()),
                      sends_per_vm=sorted(set(starts.values())), load_after=os.getloadavg())
    finally:
        pair.stop()
        control.stop(lab)
        db.dispose()
        pg.stop()
    return result


def section(data_dir: Path) -> list[str]:
    """The failover table of the scale section, from every stored run (none: nothing)."""
    runs = sorted((json.loads(p.read_text()) for p in data_dir.glob(f"{PREFIX}*.json")), key=lambda r: r["at"])
    if not runs:
        return []
    out = ["### Failover: kill -9 of an engine mid-drain (several engines on one PostgreSQL)", "",
           "`ferry bench scale-failover`: engine processes on one throw-away PostgreSQL over simulated hosts; "
           "the first drains hosts, and once migrations move data the engine owning most of them is killed "
           "with SIGKILL. *Owned*: seconds until a survivor holds each of its drains and migrations (leases "
           "table); *followed*: until a survivor's log says it follows each of those migrations again (it asks "
           "the agents; it never sends VM.migrate again). *Lost*: VMs of the drained hosts not running on "
           "exactly one other host when the drains end, asked of the simulated agents; *duplicated*: VMs sent "
           "more VM.migrate calls (VM_MIGRATION_START events) than attempts recorded, or moved twice. "
           "Lease ttl 10 s, heartbeat 2 s: 12 s at worst "
           "by design, 15 s the issue's limit.", "",
           "| run | engines | hosts / VMs | drained hosts (VMs) | killed engine owned | owned after s | "
           "followed after s | drains | lost | duplicated | load 1/5/15 |",
           "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|"]
    for r in runs:
        load = "/".join(f"{x:.1f}" for x in r.get("load_before") or ())
        out.append(f"| {r['at']} | {r['engines']} | {r['hosts']} / {r['vms']} | {r['drained_hosts']} "
                   f"({r.get('vms_moved', '–')}) | {r.get('victim_migrations', '–')} migrations, "
                   f"{r.get('victim_items', 0) - r.get('victim_migrations', 0)} drains | {r.get('takeover_s', '–')} | "
                   f"{r.get('followed_s', '–')} | {', '.join(sorted(set((r.get('drain_states') or {}).values())))} | "
                   f"{r.get('lost', '–')} | {r.get('duplicated', '–')} | {load} |")
    return out + [""]


def store_run(report: Path, result: dict) -> Path:
    """Keep the run's JSON beside the report and rewrite the scale block with it."""
    from ferry.bench import scale_report
    from ferry.bench.doc_blocks import write_block

    data_dir = report.parent / report.stem
    data_dir.mkdir(parents=True, exist_ok=True)
    stamp = result["at"].replace(" ", "-").replace(":", "")
    (data_dir / f"{PREFIX}{stamp}.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    runs = sorted((json.loads(p.read_text()) for p in data_dir.glob("scale-*.json")), key=lambda r: r["at"])
    plot = f"{data_dir.name}/scale.png" if (data_dir / "scale.png").exists() else None
    write_block(report, "scale", scale_report.render(runs, plot) + "\n".join(section(data_dir)) + "\n")
    return report
