"""A paused guest migrates through the real agents and stays paused (issue 13 item 4)."""
from __future__ import annotations

import libvirt
import pytest

pytestmark = pytest.mark.lab

GUEST = "agt-paused"


@pytest.fixture(scope="module")
def guest(agent_lab):
    lab = agent_lab.lab
    lab.destroy_guest(GUEST)
    booted = lab.boot_guest(agent_lab.h1, GUEST, memory_mib=512, fill_mib=96, dirty_mib_s=8)
    yield booted.spec.effective_uuid
    lab.destroy_guest(GUEST)


def domain_state(lab, host) -> tuple[int, int]:
    conn = lab.connect(host)
    try:
        return tuple(conn.lookupByName(GUEST).state()[:2])
    finally:
        conn.close()


def test_paused_vm_migrates_and_stays_paused_then_resumes_intact(agent_lab, guest):
    lab = agent_lab.lab
    src = agent_lab.where(guest)
    dst = agent_lab.other(src)
    conn = lab.connect(src)
    try:
        conn.lookupByName(GUEST).suspend()
    finally:
        conn.close()
    assert agent_lab.agent(src).call("VM.getStats", {"vmID": guest})["status"] == "Paused"
    agent_lab.migrate(src, guest, maxBandwidth=0)
    status = agent_lab.wait_final(src, guest, timeout=180)
    assert status["state"] == "succeeded", status
    assert "VIR_MIGRATE_PAUSED" in status["flags"]
    assert agent_lab.where(guest) == dst and guest not in agent_lab.vm_ids(src)
    assert domain_state(lab, dst)[0] == libvirt.VIR_DOMAIN_PAUSED
    assert agent_lab.agent(dst).call("VM.getStats", {"vmID": guest})["status"] == "Paused"
    # The destination ended its incoming migration (slot free) although the VM never resumed.
    assert agent_lab.agent(dst).call("Host.getStats", {})["incomingVmMigrations"] == 0
    conn = lab.connect(dst)
    try:
        conn.lookupByName(GUEST).resume()
    finally:
        conn.close()
    assert domain_state(lab, dst)[0] == libvirt.VIR_DOMAIN_RUNNING
    report = lab.verify(GUEST, dst)
    assert report.intact, report.reasons


def test_migrating_back_leaves_no_shut_off_definition_on_the_former_source(agent_lab, guest):
    """Issue 11 "No stale state": the VM is persistent where it migrated in (PERSIST_DEST); when
    it migrates away again, its old host keeps no shut-off definition of it."""
    lab = agent_lab.lab
    src = agent_lab.where(guest)
    dst = agent_lab.other(src)
    conn = lab.connect(src)
    try:
        assert conn.lookupByName(GUEST).isPersistent()
    finally:
        conn.close()
    agent_lab.migrate(src, guest, maxBandwidth=0)
    status = agent_lab.wait_final(src, guest, timeout=180)
    assert status["state"] == "succeeded", status
    conn = lab.connect(src)
    try:
        left = [d.name() for d in conn.listAllDomains() if d.name() == GUEST]
    finally:
        conn.close()
    assert left == [], f"{src.name} still defines {left}"
    assert agent_lab.where(guest) == dst
