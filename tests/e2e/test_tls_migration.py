"""Encrypted migrations for real, between lab hosts enrolled with the engine CA.

The lab's agents are switched to TLS mode for this module (https:// with mutual TLS, and
qemu+tls:// between the libvirt daemons, whose certificates come from the engine CA), and
put back in --dev mode afterwards. The migration parameters come from the engine's planner
for a cluster with encryption on and the policy "Very large VMs": the planner turns zero-copy
off (QEMU cannot combine it with TLS) and the migration must still succeed (the seed's rule).
While it runs, the source QEMU is asked over QMP whether the migration stream uses TLS
(query-migrate-parameters: tls-creds set) and whether zero-copy is on
(query-migrate-capabilities: zero-copy-send false). Afterwards the guest's memory is verified.

This drives real agents directly (VM.migrate over mutual TLS) rather than through the engine:
the engine's e2e fixture registers the lab's agents in --dev mode for the rest of the suite.
"""
from __future__ import annotations

import json
import ssl
import threading
import time

import pytest

from ferry.common.jsonrpc import TRANSPORT_ERROR, JsonRpcClient, JsonRpcError
from ferry.engine.scenario import load_scenario_text

pytestmark = pytest.mark.lab

FINAL = ("succeeded", "failed", "cancelled", "aborted")

SCENARIO = """
description: encrypted cluster, Very large VMs policy
cluster:
  policy: Very large VMs
  parallel: CUSTOM:2
  encrypted: true
  bandwidth: AUTO
  parallel_supported: true
vm:
  name: {name}
  vcpus: 1
source: {{name: {src.name}, address: {src.address}, link_speed_mbps: 10000, zerocopy: yes}}
destination: {{name: {dst.name}, address: {dst.address}, link_speed_mbps: 10000, zerocopy: yes}}
"""


@pytest.fixture(scope="module")
def tls_lab(lab):
    from ferry.lab import tls as lab_tls

    hosts = lab.plan.hosts(2)
    for h in hosts:
        assert (lab_tls.host_tls_dir(h) / "libvirt" / "servercert.pem").exists(), \
            f"{h.name} has no TLS material: lab up enrolls every host (ferry.lab.tls)"
    was_tls = lab_tls.agents_tls(lab.plan)
    lab_tls.set_agents_tls(lab.plan, True)
    try:
        if not was_tls:
            for h in hosts:
                agent = lab.restart_agent(h)
                assert not agent.get("error"), agent
        yield lab, hosts
    finally:
        if not was_tls:
            lab_tls.set_agents_tls(lab.plan, False)
            for h in hosts:
                lab.restart_agent(h)


def client(host) -> JsonRpcClient:
    """The engine's view: https:// with the engine's client certificate (FERRY_PKI_DIR)."""
    from ferry.lab.tls import agent_url
    from ferry.pki import engine_client_tls

    return JsonRpcClient(agent_url(host, tls=True), timeout=30, tls=engine_client_tls())


def qmp(lab, host, vm: str, command: str) -> dict:
    import libvirt_qemu

    conn = lab.connect(host)
    try:
        dom = conn.lookupByName(vm)
        return json.loads(libvirt_qemu.qemuMonitorCommand(dom, json.dumps({"execute": command}), 0))["return"]
    finally:
        conn.close()


def test_lab_agents_in_tls_mode_refuse_clients_without_the_engine_certificate(tls_lab):
    lab, (h1, _) = tls_lab
    assert client(h1).call("Host.getVMList", {}) is not None
    from ferry.lab.tls import engine_pki
    from ferry.pki.tls import ReadyContext

    no_cert = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    no_cert.load_verify_locations(cafile=str(engine_pki().ca_cert))
    with pytest.raises(JsonRpcError) as err:
        JsonRpcClient(f"https://{h1.address}:54321", timeout=10, tls=ReadyContext(no_cert)).call("Host.getVMList", {})
    assert err.value.code == TRANSPORT_ERROR and "client certificate" in err.value.message
    with pytest.raises(JsonRpcError) as err:
        JsonRpcClient(f"http://{h1.address}:54321", timeout=10).call("Host.getVMList", {})
    assert "HTTPS only" in err.value.message


def test_a_hosts_certificate_cannot_command_another_host(tls_lab):
    """Issue 12: h1's agent certificate is refused by h2 for anything but a migration peer's verbs."""
    from ferry.common.jsonrpc import ERROR_CODES
    from ferry.lab.tls import agent_url, engine_pki, host_tls_dir
    from ferry.pki import TlsFiles

    lab, (h1, h2) = tls_lab
    etc = host_tls_dir(h1) / "ferry"
    as_h1 = JsonRpcClient(agent_url(h2, tls=True), timeout=10,
                          tls=TlsFiles(engine_pki().ca_cert, etc / "certs/agentcert.pem", etc / "keys/agentkey.pem"))
    for verb, params in (("Host.getVMList", {}), ("Host.getCapabilities", {}),
                         ("VM.destroy", {"vmID": "11111111-2222-3333-4444-555555555555"})):
        with pytest.raises(JsonRpcError) as err:
            as_h1.call(verb, params)
        assert err.value.code == ERROR_CODES["forbidden"], err.value
        assert err.value.message.startswith(f"forbidden for host {h1.name}: {verb}")


def test_encrypted_very_large_vm_policy_migrates_over_tls_without_zerocopy(tls_lab, lab_guest):
    lab, (h1, h2) = tls_lab
    guest = lab_guest(host=h1.index, memory_mib=1024, fill_mib=700, dirty_mib_s=32)
    plan = load_scenario_text(SCENARIO.format(name=guest.name, src=h1, dst=h2)).plan().to_dict()
    assert "VIR_MIGRATE_TLS" in plan["libvirt_flags"] and "VIR_MIGRATE_ZEROCOPY" not in plan["libvirt_flags"]
    assert not plan["params"].get("zerocopy")
    params = {**plan["params"], "dst": f"{h2.address}:54321", "dstqemu": h2.address}
    conn = lab.connect(h1)
    try:
        vm_id = conn.lookupByName(guest.name).UUIDString()
    finally:
        conn.close()

    seen: dict = {"tls_creds": set(), "zero_copy": set(), "statuses": set(), "tls_hostname": set()}
    stop = threading.Event()

    def sample() -> None:  # QMP on the source QEMU while the migration runs
        while not stop.is_set():
            try:
                status = qmp(lab, h1, guest.name, "query-migrate").get("status")
                if status in ("active", "device", "pre-switchover"):
                    p = qmp(lab, h1, guest.name, "query-migrate-parameters")
                    caps = {c["capability"]: c["state"]
                            for c in qmp(lab, h1, guest.name, "query-migrate-capabilities")}
                    seen["statuses"].add(status)
                    seen["tls_creds"].add(p.get("tls-creds") or "")
                    seen["tls_hostname"].add(p.get("tls-hostname") or "")
                    seen["zero_copy"].add(caps.get("zero-copy-send"))
            except Exception:  # noqa: BLE001 - the domain leaves the source at the end
                pass
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.monotonic()
    client(h1).call("VM.migrate", {"vmID": vm_id, "params": params})
    status: dict = {}
    while time.monotonic() - t0 < 300:
        status = client(h1).call("VM.getMigrationStatus", {"vmID": vm_id})
        if status["state"] in FINAL:
            break
        time.sleep(0.5)
    stop.set()
    sampler.join(5)

    print("QMP samples:", seen, "status:", {k: status.get(k) for k in ("state", "flags", "message")})
    assert status["state"] == "succeeded", status
    assert "VIR_MIGRATE_TLS" in status["flags"] and "VIR_MIGRATE_ZEROCOPY" not in status["flags"]
    assert seen["statuses"], "no QMP sample caught the migration running"
    assert "" not in seen["tls_creds"] and all(c for c in seen["tls_creds"]), seen  # TLS on the stream
    assert seen["tls_hostname"] == {h2.address}, seen       # the destination's cert is checked by address
    assert seen["zero_copy"] == {False}, seen
    assert vm_id in {vm["vmID"] for vm in client(h2).call("Host.getVMList", {})["vms"]}
    report = lab.verify(guest.name, host=h2)
    assert report.intact, report.reasons
