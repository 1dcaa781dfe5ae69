"""`ferry bench evacuate`: emptying a host with the drain against the same migrations one by one.

Why: the drain runs migrations side by side within the hosts' limits, in forecast order; the
question is how much sooner the host is empty than with an admin migrating VM after VM. Both
runs go through a private engine on the lab (policy Minimal downtime: 2 migrations per host),
with the same guests on host 1: first one by one (each POST /api/vms/{vm}/migrate waited for,
destinations alternating), the guests are moved back (not timed), then `maintenance` on host 1
until it is in MAINTENANCE. `summary` and `report_section` are pure.
"""
from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ferry.bench.doc_blocks import markers, write_block
from ferry.common.errors import OperationFailed

CLUSTER = "evacuate"
MARK_BEGIN, MARK_END = markers("evacuate")


def summary(sequential_s: list[float], drain_s: list[float], **config: Any) -> dict[str, Any]:
    seq, dr = statistics.median(sequential_s), statistics.median(drain_s)
    return {"kind": "evacuate", **config, "sequential_s": [round(x, 2) for x in sequential_s],
            "drain_s": [round(x, 2) for x in drain_s], "sequential_median_s": round(seq, 2),
            "drain_median_s": round(dr, 2), "speedup": round(seq / dr, 2) if dr > 0 else None}


def report_section(r: dict[str, Any]) -> str:
    return "\n".join([
        "## Evacuate: the drain against one-by-one migrations (`ferry bench evacuate`)", "",
        f"{r['vms']} guests of {r['memory_mib']} MiB ({r['fill_mib']} MiB filled, {r['dirty_mib_s']} MiB/s dirtied) "
        f"on lab host 1, policy Minimal downtime (2 migrations per host), {r['repeat']} run(s), medians:", "",
        "| how | host empty after (s) | runs (s) |", "|---|---|---|",
        f"| one by one (migrate, wait, next) | {r['sequential_median_s']} | "
        f"{', '.join(str(x) for x in r['sequential_s'])} |",
        f"| drain (`ferry host maintenance`) | {r['drain_median_s']} | {', '.join(str(x) for x in r['drain_s'])} |",
        "", f"The drain empties the host {r['speedup']}x as fast. TCG guests on one shared machine: the "
        "absolute times are the lab's, the ratio is the point."])


def write_section(path: str | Path, r: dict[str, Any]) -> Path:
    """Put the section into the report: its own block, replacing an earlier one (ferry.bench.doc_blocks)."""
    return write_block(path, "evacuate", report_section(r))


class EvacuateBench:
    def __init__(self, lab, *, vms: int = 4, memory_mib: int = 256, fill_mib: int = 64, dirty_mib_s: int = 0,
                 repeat: int = 1, progress: Callable[[str], None] = print, timeout_s: float = 600.0):
        self.lab, self.n, self.memory_mib, self.fill_mib = lab, vms, memory_mib, fill_mib
        self.dirty_mib_s, self.repeat, self.progress, self.timeout_s = dirty_mib_s, repeat, progress, timeout_s
        self.hosts = lab.plan.hosts(3)

    def run(self) -> dict[str, Any]:
        from ferry.client.engine_client import EngineClient
        from ferry.engine.db import upgrade_database
        from ferry.engine.process import free_port, start_engine
        from ferry.engine.services.tokens import issue_token
        from ferry.lab import procs

        if len(self.lab.hosts()) < 3:
            raise OperationFailed(f"lab {self.lab.lab_id} needs 3 hosts up: run `ferry lab up 3` first")
        work = Path(self.lab.plan.dir) / "evacuate-engine"
        work.mkdir(parents=True, exist_ok=True)
        db = work / "engine.db"
        db.unlink(missing_ok=True)
        url = f"sqlite:///{db}"
        upgrade_database(url)
        token = issue_token(url, "admin", "bench")[0]
        port = free_port()
        proc = start_engine(url, work / "engine.log", port=port, monitor_interval=2,
                            images_dir=self.lab.plan.images_dir)
        self.progress(f"engine: pid {proc.pid} on port {port}")
        client = EngineClient(f"http://127.0.0.1:{port}", token, timeout=60)
        names: list[str] = []
        try:
            self._setup(client)
            names = [self._guest(client) for _ in range(self.n)]
            seq, drain = [], []
            for r in range(self.repeat):
                seq.append(self._one_by_one(client, names))
                self.progress(f"run {r + 1}: one by one {seq[-1]:.1f} s")
                self._back_to_host1(client, names)
                drain.append(self._drain(client))
                self.progress(f"run {r + 1}: drain {drain[-1]:.1f} s")
                client.post(f"/api/hosts/{self.hosts[0].name}/activate", {})
                if r + 1 < self.repeat:
                    self._back_to_host1(client, names)
            return summary(seq, drain, vms=self.n, memory_mib=self.memory_mib, fill_mib=self.fill_mib,
                           dirty_mib_s=self.dirty_mib_s, repeat=self.repeat)
        finally:
            for name in names:
                try:
                    client.post(f"/api/vms/{name}/stop", {})
                except Exception:  # noqa: BLE001 - clean-up goes on
                    pass
                self.lab.destroy_guest(name)
            client.close()
            procs.stop(proc.pid, timeout=15)

    def _setup(self, client) -> None:
        client.post("/api/clusters", {"name": CLUSTER, "policy": "Minimal downtime", "parallel": {"mode": "DISABLED"},
                                      "bandwidth": {"mode": "AUTO"}})
        for h in self.hosts:
            client.post("/api/hosts", {"name": h.name, "cluster": CLUSTER, "address": h.address,
                                       "link_speed_mbps": 10_000})
            if client.post(f"/api/hosts/{h.name}/refresh", {})["status"] != "UP":
                raise OperationFailed(f"the engine cannot reach {h.name}'s agent")

    def _guest(self, client, boot_timeout: float = 180.0) -> str:
        name = f"ev-{uuid.uuid4().hex[:6]}"
        workload = {"fill_mib": self.fill_mib, "dirty_mib_s": self.dirty_mib_s}
        spec = self.lab.guest_spec(name, memory_mib=self.memory_mib, **workload).to_dict()
        client.post("/api/vms", {**spec, "cluster": CLUSTER, "workload": workload})
        client.post(f"/api/vms/{name}/start", {"host": self.hosts[0].name})
        console = self.lab.console_log(self.hosts[0], name)   # the workload's first heartbeat
        deadline = time.monotonic() + boot_timeout
        while "FERRY HB " not in (console.read_text(errors="replace") if console.exists() else ""):
            if time.monotonic() > deadline:
                raise OperationFailed(f"guest {name} gave no heartbeat within {boot_timeout:.0f} s ({console})")
            time.sleep(0.3)
        return name

    def _migrate(self, client, name: str, to: str) -> None:
        from ferry.client.follow import wait_for

        m = wait_for(client, client.post(f"/api/vms/{name}/migrate", {"to": to}), timeout=self.timeout_s)
        if m["state"] != "SUCCEEDED":
            raise OperationFailed(f"migration of {name} to {to} ended {m['state']}: {m.get('error')}")

    def _one_by_one(self, client, names: list[str]) -> float:
        t0 = time.monotonic()
        for i, name in enumerate(names):
            self._migrate(client, name, self.hosts[1 + i % 2].name)
        return time.monotonic() - t0

    def _back_to_host1(self, client, names: list[str]) -> None:
        for name in names:
            if client.get(f"/api/vms/{name}")["host"] != self.hosts[0].name:
                self._migrate(client, name, self.hosts[0].name)

    def _drain(self, client) -> float:
        h1 = self.hosts[0].name
        deadline = time.monotonic() + 60   # a loaded machine: the monitor may have missed h1's agent
        while client.post(f"/api/hosts/{h1}/refresh", {})["status"] != "UP":
            if time.monotonic() > deadline:
                raise OperationFailed(f"{h1}'s agent does not answer: cannot drain it")
            time.sleep(2)
        t0 = time.monotonic()
        client.post(f"/api/hosts/{h1}/maintenance", {})
        while True:
            view = client.get(f"/api/hosts/{h1}/maintenance")
            if view["state"] == "DONE":
                return time.monotonic() - t0
            if view["stuck"] or time.monotonic() - t0 > self.timeout_s:
                raise OperationFailed(f"the drain of {h1} did not end: {view['stuck'] or view['state']}")
            time.sleep(0.1)
