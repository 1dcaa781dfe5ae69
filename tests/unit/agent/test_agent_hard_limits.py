"""The hard limits applied by the migration job over the fake libvirt (issue 13 item 7)."""
import pytest

from ferry.common.jsonrpc import JsonRpcError
from tests.unit.agent.fake_libvirt import GiB, domain_xml, iterating_script
from tests.unit.agent.test_agent_api import VM, Direct, make_agent, rpc, wait_final

STALLING = dict(step_remaining=lambda it: GiB // 2, pause=0.05)     # never a new low after the first


def agents(**config):
    dst, _ = make_agent()
    client = Direct(dst)
    src, sconn = make_agent(destination=lambda address: client, **config)
    sconn.add_domain(domain_xml(memory_mib=1024))
    return src, sconn


def migrate(src, **params):
    rpc(src, "VM.migrate", {"vmID": VM, "params": {"dst": "127.0.1.3", **params}})
    return wait_final(src, timeout=20)


def test_progress_timeout_of_the_call_aborts_a_stalling_migration_and_names_the_limit():
    src, sconn = agents()
    sconn.domains[VM].migration_script = iterating_script(range(1, 200), **STALLING)
    status = migrate(src, progressTimeout=1, maxTimePerGiB=0)
    assert status["state"] == "aborted", status
    assert "migration_progress_timeout" in status["message"] and "new low" in status["message"]
    assert status["error"].startswith("migration_progress_timeout:") and "operation aborted" in status["error"]
    assert sconn.named_calls("abortJob")
    assert sconn.domains[VM].running          # aborted: the VM stays here


def test_max_time_per_gib_of_the_call_aborts_a_long_migration_and_names_the_limit():
    src, sconn = agents()
    # Converging slowly (always a new low), but 1 s/GiB x 1 GiB allows 1 s only.
    sconn.domains[VM].migration_script = iterating_script(
        range(1, 200), step_remaining=lambda it: GiB - it * (1 << 20), pause=0.05)
    status = migrate(src, maxTimePerGiB=1, progressTimeout=0)
    assert status["state"] == "aborted", status
    assert "migration_max_time_per_gib_mem" in status["message"] and "maximum of 1 s" in status["message"]


def test_rule_agent_limits_apply_to_unscheduled_migrations_only_as_in_vdsm():
    schedule = {"init": [], "stalling": [{"limit": 500, "action": {"name": "abort", "params": []}}]}
    src, sconn = agents(max_time_per_gib=1, progress_timeout=1)
    sconn.domains[VM].migration_script = iterating_script(range(1, 50), **STALLING)   # ~2.5 s
    status = migrate(src, convergenceSchedule=schedule)
    assert status["state"] == "succeeded", status                   # the schedule is the limit
    src, sconn = agents(max_time_per_gib=1, progress_timeout=1)
    sconn.domains[VM].migration_script = iterating_script(range(1, 200), **STALLING)
    status = migrate(src)                                           # legacy: the agent's limits
    assert status["state"] == "aborted" and "migration_" in status["message"], status


def test_default_agent_limits_leave_a_short_migration_alone():
    src, sconn = agents()
    sconn.domains[VM].migration_script = iterating_script(range(1, 20), **STALLING)
    assert migrate(src)["state"] == "succeeded"


def test_rule_no_hard_limit_once_postcopy_runs():
    schedule = {"init": [], "stalling": [{"limit": -1, "action": {"name": "postcopy", "params": []}}]}
    src, sconn = agents()
    sconn.domains[VM].migration_script = iterating_script(range(1, 50), **STALLING)
    status = migrate(src, convergenceSchedule=schedule, maxTimePerGiB=1, progressTimeout=1)
    assert status["state"] == "succeeded", status
    assert status["postcopy"] is True and sconn.named_calls("abortJob") == []


@pytest.mark.parametrize("key, value", [("maxTimePerGiB", -1), ("progressTimeout", "soon"),
                                        ("progressTimeout", 100_000), ("maxTimePerGiB", True)])
def test_bad_limit_values_name_the_field(key, value):
    src, _ = agents()
    with pytest.raises(JsonRpcError) as err:
        rpc(src, "VM.migrate", {"vmID": VM, "params": {"dst": "h", key: value}})
    assert err.value.data["field"] == key and key in err.value.message
