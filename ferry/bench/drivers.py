"""Who drives a benchmark migration: Ferry (its engine's REST API, or its agents' JSON-RPC), or bare virsh.

Each driver starts one migration of a lab guest from `src` to `dst` and returns when it has
ended, with the wall time its caller waited: for Ferry from the request until the final status
is seen (long-polled, as `ferry migrate --wait` and the engine follow a migration; plain polls
every `poll_s` against parts without the long poll), for virsh from the process's start until
it exits. That wall
time is what the control-plane overhead compares; QEMU's own figures come from the collectors.
"""
from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field

from ferry.bench.virsh_baseline import virsh_migrate_command
from ferry.common.jsonrpc import JsonRpcClient, JsonRpcError
from ferry.engine.status_follow import pause_before_next, status_request
from ferry.lab.plan import AGENT_PORT, HostPlan
from ferry.pki import engine_client_tls
from ferry.protocol.flags import MigrationFlags, build_migration_flags
from ferry.protocol.status import MigrationStatus

# A benchmark migration sent straight to the agents: no bandwidth cap and no convergence actions
# (QEMU's default downtime limit, as with bare virsh); the mode adds parallel connections/zero-copy.
BENCH_BASE_PARAMS = {"maxBandwidth": 0, "convergenceSchedule": {"init": [], "stalling": []}}


@dataclass
class DriverOutcome:
    ok: bool
    wall_s: float
    state: str
    error: str | None = None
    flags: list[str] = field(default_factory=list)
    typed_params: dict = field(default_factory=dict)
    detail: dict = field(default_factory=dict)   # the driver's own final status (agent/engine)


def lab_agents(lab) -> tuple[dict[str, str], str]:
    """The lab's agent URLs by host name, and how their libvirt daemons reach each other.

    Lab agents serve mutual TLS (https://) and migrate over qemu+tls://, or in --dev mode plain
    HTTP and qemu+tcp:// (ferry.lab.tls); the bare-virsh baseline must use the same transport."""
    urls = {h["name"]: h["agent"]["url"] for h in lab.status()["hosts"] if h.get("agent")}
    tls = any(u.startswith("https://") for u in urls.values())
    return urls, "tls" if tls else "tcp"


def agent_migrate_params(dst: HostPlan, params: dict) -> dict:
    """VM.migrate parameters for a lab destination (its agent and its QEMU on its address)."""
    return {"dst": f"{dst.address}:{AGENT_PORT}", "dstqemu": dst.address, **params}


def lab_flags(dst: HostPlan, params: dict, *, transport: str = "tcp",
              zerocopy_available: bool = True) -> MigrationFlags:
    """The flags a lab agent passes for these parameters (`transport`: see `lab_agents`)."""
    return build_migration_flags(agent_migrate_params(dst, params), zerocopy_available=zerocopy_available,
                                 libvirt_transport=transport)


class AgentDriver:
    """Ferry through the source host's agent (VM.migrate, then VM.getMigrationStatus)."""

    name = "ferry-agent"

    def __init__(self, agent_urls: dict[str, str] | None = None, poll_s: float = 0.1, timeout_s: float = 900.0):
        self.agent_urls = agent_urls or {}
        self.poll_s = poll_s
        self.timeout_s = timeout_s

    def params_for(self, vm: str, mode, src: HostPlan, dst: HostPlan) -> dict:
        return {**BENCH_BASE_PARAMS, **mode.migrate_params()}

    def migrate(self, *, vm: str, vm_id: str, src: HostPlan, dst: HostPlan, params: dict) -> DriverOutcome:
        client = JsonRpcClient(self.agent_urls.get(src.name) or src.agent_url, timeout=30, tls=engine_client_tls())
        t0 = time.monotonic()
        try:
            client.call("VM.migrate", {"vmID": vm_id, "params": agent_migrate_params(dst, params)})
        except JsonRpcError as exc:
            return DriverOutcome(False, time.monotonic() - t0, "refused", exc.message)
        status: dict = {}
        seen: int | None = None
        while time.monotonic() - t0 < self.timeout_s:
            request = status_request(vm_id, seen)      # long poll, as the engine follows an agent
            called = time.monotonic()
            try:
                status = client.call("VM.getMigrationStatus", request)
            except JsonRpcError as exc:
                status = {"state": "unknown", "error": exc.message}
            typed = MigrationStatus.from_wire(status)
            if typed.state.final:
                break
            pause = pause_before_next(typed, request["waitForChange"]["version"], time.monotonic() - called,
                                      self.poll_s)
            seen = typed.version
            if pause:
                time.sleep(pause)
        wall = time.monotonic() - t0
        state = status.get("state", "unknown")
        return DriverOutcome(state == "succeeded", wall, state, status.get("error"),
                             list(status.get("flags") or []), dict(status.get("typedParams") or {}), status)


class VirshDriver:
    """Bare `virsh -c qemu+tcp://<src>/system migrate` with the flags Ferry's agent would pass."""

    name = "virsh"

    def __init__(self, transport: str = "tcp", timeout_s: float = 900.0):
        self.transport = transport
        self.timeout_s = timeout_s

    def migrate(self, *, vm: str, vm_id: str, src: HostPlan, dst: HostPlan, params: dict) -> DriverOutcome:
        flags = lab_flags(dst, params, transport=self.transport)
        argv = virsh_migrate_command(vm, src.uri, flags)
        t0 = time.monotonic()
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            return DriverOutcome(False, time.monotonic() - t0, "timeout", f"virsh did not end in {self.timeout_s:.0f} s")
        wall = time.monotonic() - t0
        ok = proc.returncode == 0
        return DriverOutcome(ok, wall, "succeeded" if ok else "failed",
                             None if ok else (proc.stderr or proc.stdout).strip()[-500:],
                             list(flags.names), {k: v for k, v in flags.typed_params.items()},
                             {"argv": argv})
