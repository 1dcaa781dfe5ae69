"""VM.getDirtyRate on a real lab guest (libvirt 11 / QEMU 10, page sampling under TCG)."""
from __future__ import annotations

import pytest

from tests.integration.agent.conftest import JsonRpcError

pytestmark = pytest.mark.lab

GUEST = "dirty-guest"
FILL_MIB, DIRTY_MIBS = 192, 64


@pytest.fixture(scope="module")
def guest(agent_lab):
    lab = agent_lab.lab
    lab.destroy_guest(GUEST)
    booted = lab.boot_guest(agent_lab.h1, GUEST, memory_mib=512, fill_mib=FILL_MIB, dirty_mib_s=DIRTY_MIBS)
    yield booted.spec.effective_uuid
    lab.destroy_guest(GUEST)


def test_measured_dirty_rate_and_touched_memory_are_plausible(agent_lab, guest):
    answer = agent_lab.agent(agent_lab.h1).call("VM.getDirtyRate", {"vmID": guest, "seconds": 4})
    print("VM.getDirtyRate:", answer)
    assert answer["mode"] == "page-sampling"   # lab guests do not turn KVM's dirty ring on
    assert 0.4 * DIRTY_MIBS <= answer["dirtyRateMiBs"] <= 1.5 * DIRTY_MIBS, answer
    est = answer["estimate"]
    assert est["lowMiBs"] <= est["estimateMiBs"] <= est["highMiBs"]
    assert est["lowMiBs"] <= DIRTY_MIBS * 1.5 and est["highMiBs"] >= DIRTY_MIBS * 0.4
    assert answer["touchedMiB"] >= FILL_MIB, answer
    assert answer["touchedMiB"] <= answer["memoryMiB"] == 512


def test_bad_seconds_is_invalid_params_naming_the_field(agent_lab, guest):
    with pytest.raises(JsonRpcError) as err:
        agent_lab.agent(agent_lab.h1).call("VM.getDirtyRate", {"vmID": guest, "seconds": 0})
    assert err.value.data["field"] == "seconds"
