"""Force-complete's rule on the agent (ferry.agent.force_complete.decide)."""
from __future__ import annotations

import threading

import pytest

from ferry.agent.force_complete import MAX_DOWNTIME_MS, MIN_DOWNTIME_MS, decide
from ferry.common.jsonrpc import JsonRpcError
from tests.unit.agent.test_agent_api import VM, pair, rpc, wait_final  # noqa: F401


def test_postcopy_when_the_migration_was_started_with_it_and_has_one_connection():
    d = decide(postcopy_flag=True, parallel=None, remaining_bytes=10**9, bandwidth_bps=10**8)
    assert d.mode == "postcopy" and d.downtime_ms is None


def test_parallel_connections_forbid_postcopy_and_say_why():
    d = decide(postcopy_flag=True, parallel=4, remaining_bytes=100 * 2**20, bandwidth_bps=50 * 2**20)
    assert d.mode == "downtime" and "multifd" in d.reason
    assert d.downtime_ms == 3000          # 2 s of rest at 50 MiB/s, x1.5


def test_without_the_postcopy_flag_the_downtime_is_raised_within_bounds():
    small = decide(postcopy_flag=False, parallel=None, remaining_bytes=2**20, bandwidth_bps=2**30)
    assert small.mode == "downtime" and small.downtime_ms == MIN_DOWNTIME_MS and "VIR_MIGRATE_POSTCOPY" in small.reason
    huge = decide(postcopy_flag=False, parallel=None, remaining_bytes=2**40, bandwidth_bps=2**20)
    assert huge.downtime_ms == MAX_DOWNTIME_MS
    unknown = decide(postcopy_flag=False, parallel=None, remaining_bytes=None, bandwidth_bps=0)
    assert unknown.downtime_ms == MAX_DOWNTIME_MS


def test_already_in_postcopy_does_nothing():
    assert decide(postcopy_flag=True, parallel=None, remaining_bytes=1, bandwidth_bps=1,
                  postcopy_running=True).mode == "none"



def test_verb_raises_the_downtime_of_a_migration_started_without_postcopy(pair):  # noqa: F811
    src, sconn = pair[:2]
    release = threading.Event()
    sconn.domains[VM].migration_script = lambda dom: release.wait(5)
    with pytest.raises(JsonRpcError) as err:
        rpc(src, "VM.migrateForceComplete", {"vmID": VM})
    assert err.value.code == 82                    # not migrating: migCancelErr, as migrateChangeParams
    rpc(src, "VM.migrate", {"vmID": VM, "params": {"dst": "h2"}})
    answer = rpc(src, "VM.migrateForceComplete", {"vmID": VM})
    release.set()
    wait_final(src)
    assert answer["mode"] == "downtime" and answer["downtimeMs"] >= MIN_DOWNTIME_MS
    assert "VIR_MIGRATE_POSTCOPY" in answer["reason"]
    assert sconn.named_calls("migrateSetMaxDowntime")[-1][1] == answer["downtimeMs"]
    assert not sconn.named_calls("migrateStartPostCopy")
