"""Lab access for the agent's integration tests: two real hosts with real agents.

Uses the session `lab` fixture (tests/fixtures/lab.py) when it exists; until then, the lab of
FERRY_LAB_ID brought up through `ferry.lab.Lab` itself (and taken down after the module).
"""
from __future__ import annotations

import os
import time

import pytest

from ferry.common.jsonrpc import JsonRpcClient, JsonRpcError
from ferry.pki import engine_client_tls

FINAL = ("succeeded", "failed", "cancelled", "aborted")


class AgentLab:
    """The lab plus the JSON-RPC clients of host 1 and host 2's agents."""

    def __init__(self, lab):
        self.lab = lab
        self.h1, self.h2 = lab.hosts()[:2] if len(lab.hosts()) >= 2 else lab.plan.hosts(2)

    def agent(self, host) -> JsonRpcClient:
        return JsonRpcClient(host.agent_url, timeout=30, tls=engine_client_tls())

    def other(self, host):
        return self.h2 if host.index == self.h1.index else self.h1

    def where(self, vm_id: str):
        """The host whose agent lists the VM as running, or None."""
        for host in (self.h1, self.h2):
            for vm in self.agent(host).call("Host.getVMList", {})["vms"]:
                if vm["vmID"] == vm_id:
                    return host
        return None

    def vm_ids(self, host) -> set[str]:
        return {vm["vmID"] for vm in self.agent(host).call("Host.getVMList", {})["vms"]}

    def migrate(self, src, vm_id: str, **params) -> dict:
        dst = self.other(src)
        params = {"dst": f"{dst.address}:54321", "dstqemu": dst.address, **params}
        return self.agent(src).call("VM.migrate", {"vmID": vm_id, "params": params})

    def wait_final(self, host, vm_id: str, timeout: float = 240.0, on_status=None) -> dict:
        deadline = time.monotonic() + timeout
        status: dict = {}
        while time.monotonic() < deadline:
            status = self.agent(host).call("VM.getMigrationStatus", {"vmID": vm_id})
            if on_status:
                on_status(status)
            if status["state"] in FINAL:
                return status
            time.sleep(0.5)
        raise AssertionError(f"migration of {vm_id} did not end within {timeout:.0f} s: {status}")


@pytest.fixture(scope="module")
def agent_lab(request):
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (namespaces, libvirtd)")
    started_here = False
    try:
        lab = request.getfixturevalue("lab")
    except pytest.FixtureLookupError:
        from ferry.lab.lab import Lab

        lab = Lab()
        lab.up(2)
        started_here = True
    status = lab.status()
    agents = [h.get("agent") or {} for h in status["hosts"][:2]]
    if len(agents) < 2 or not all(a.get("running") for a in agents):
        pytest.fail(f"lab up did not leave an agent running on hosts 1 and 2: {agents}")
    yield AgentLab(lab)
    if started_here:
        lab.down()


__all__ = ["AgentLab", "JsonRpcError"]
