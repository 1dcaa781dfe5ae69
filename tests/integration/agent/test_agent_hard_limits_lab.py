"""Vdsm's progress timeout on a real migration that cannot converge (issue 13 item 7)."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.lab

GUEST = "agt-limits"


@pytest.fixture(scope="module")
def guest(agent_lab):
    lab = agent_lab.lab
    lab.destroy_guest(GUEST)
    booted = lab.boot_guest(agent_lab.h1, GUEST, memory_mib=512, fill_mib=64, dirty_mib_s=32)
    yield booted.spec.effective_uuid
    lab.destroy_guest(GUEST)


def test_progress_timeout_aborts_a_migration_dirtying_faster_than_its_cap(agent_lab, guest):
    src = agent_lab.where(guest)
    dst = agent_lab.other(src)
    # 32 MiB/s dirtied against an 8 MiB/s cap: after the first pass the remaining data stops
    # reaching new lows, and a 3 s progress timeout ends it long before the legacy schedule would.
    agent_lab.migrate(src, guest, maxBandwidth=8, progressTimeout=3, maxTimePerGiB=0)
    status = agent_lab.wait_final(src, guest, timeout=180)
    assert status["state"] == "aborted", status
    assert "migration_progress_timeout" in status["message"], status["message"]
    assert status["error"].startswith("migration_progress_timeout:")
    assert status["scheduleActions"][-1]["action"] != "abort"      # not the schedule's abort
    assert agent_lab.where(guest) == src and guest not in agent_lab.vm_ids(dst)
    assert agent_lab.agent(src).call("VM.getStats", {"vmID": guest})["status"] == "Up"
    report = agent_lab.lab.verify(GUEST, src)
    assert report.intact, report.reasons
