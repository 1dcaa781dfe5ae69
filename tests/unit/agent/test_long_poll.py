"""VM.getMigrationStatus's `waitForChange` long poll: the parameter's checks, the change counter,
and the agent answering the moment a migration's status changes (recording fake libvirt),
including several long polls held at once over the real HTTP server."""
import threading
import time

import pytest

from ferry.agent.long_poll import MAX_WAIT_S, WaitForChange, parse_wait_for_change
from ferry.agent.server import make_server
from ferry.common.change_counter import ChangeCounter
from ferry.common.errors import InvalidInput
from ferry.common.jsonrpc import JsonRpcClient, JsonRpcError
from tests.unit.agent.fake_libvirt import iterating_script
from tests.unit.agent.test_agent_api import VM, pair, rpc, wait_final  # noqa: F401 - pair is a fixture

FINAL = ("succeeded", "failed", "cancelled", "aborted")


# ---- the parameter -----------------------------------------------------------------------------

def test_absent_means_answer_at_once():
    assert parse_wait_for_change(None) is None


def test_valid_parameter():
    assert parse_wait_for_change({"version": 3, "timeout": 1.5}) == WaitForChange(3, 1.5)
    assert parse_wait_for_change({"version": 0}) == WaitForChange(0, MAX_WAIT_S)
    assert parse_wait_for_change({"version": 7, "timeout": 0}) == WaitForChange(7, 0.0)


@pytest.mark.parametrize("raw, field", [
    ([1, 2], "waitForChange"),
    ({"timeout": 1}, "waitForChange.version"),
    ({"version": -1}, "waitForChange.version"),
    ({"version": "3"}, "waitForChange.version"),
    ({"version": True}, "waitForChange.version"),
    ({"version": 1, "timeout": MAX_WAIT_S + 0.1}, "waitForChange.timeout"),
    ({"version": 1, "timeout": -1}, "waitForChange.timeout"),
    ({"version": 1, "timeout": "soon"}, "waitForChange.timeout"),
    ({"version": 1, "timeout": float("nan")}, "waitForChange.timeout"),
    ({"version": 1, "since": 2}, "waitForChange.since"),
])
def test_bad_parameter_names_the_field(raw, field):
    with pytest.raises(InvalidInput) as err:
        parse_wait_for_change(raw)
    assert err.value.field == field


# ---- the counter -------------------------------------------------------------------------------

def test_counter_answers_at_once_when_the_caller_is_behind():
    v = ChangeCounter()
    v.bump()
    t0 = time.monotonic()
    assert v.wait_past(0, 5) == 1
    assert time.monotonic() - t0 < 0.5


def test_counter_wakes_a_waiter_on_bump_and_times_out_without_one():
    v = ChangeCounter()
    threading.Timer(0.1, v.bump).start()
    t0 = time.monotonic()
    assert v.wait_past(0, 5) == 1
    assert 0.05 < time.monotonic() - t0 < 2
    t0 = time.monotonic()
    assert v.wait_past(1, 0.2) == 1
    assert time.monotonic() - t0 >= 0.19


# ---- the agent ---------------------------------------------------------------------------------

def _slow_migration(sconn, iterations=6, seconds=0.6):
    dom = sconn.domains[VM]
    dom.migration_script = iterating_script(range(1, iterations + 1), pause=seconds / iterations)
    return dom


def test_status_carries_a_version_that_grows_with_changes(pair):
    src, sconn = pair[0], pair[1]
    _slow_migration(sconn)
    rpc(src, "VM.migrate", {"vmID": VM, "params": {"dst": "127.0.0.3"}})
    versions = []
    while True:
        status = rpc(src, "VM.getMigrationStatus", {"vmID": VM})
        versions.append(status["version"])
        if status["state"] in FINAL:
            break
        time.sleep(0.01)
    assert status["state"] == "succeeded"
    assert versions == sorted(versions) and versions[-1] > versions[0]


def test_long_poll_answers_when_the_migration_ends_not_at_its_timeout(pair):
    src, sconn = pair[0], pair[1]
    _slow_migration(sconn)
    rpc(src, "VM.migrate", {"vmID": VM, "params": {"dst": "127.0.0.3"}})
    seen, ended_seen_at = 0, None
    while True:
        status = rpc(src, "VM.getMigrationStatus", {"vmID": VM, "waitForChange": {"version": seen, "timeout": 5}})
        assert status["version"] != seen or status["state"] in FINAL
        seen = status["version"]
        if status["state"] in FINAL:
            ended_seen_at = time.time()
            break
    job = src.jobs[VM]
    assert status["state"] == "succeeded"
    assert ended_seen_at - job.ended_at < 0.2       # heard of the end at once, not 5 s later


def test_long_poll_with_the_current_version_waits_its_timeout_when_nothing_changes(pair):
    src = pair[0]
    rpc(src, "VM.migrate", {"vmID": VM, "params": {"dst": "127.0.0.3"}})
    final = wait_final(src)
    t0 = time.monotonic()
    again = rpc(src, "VM.getMigrationStatus", {"vmID": VM, "waitForChange": {"version": final["version"],
                                                                             "timeout": 0.3}})
    assert 0.28 <= time.monotonic() - t0 < 2
    assert again == final


def test_without_a_job_the_long_poll_answers_at_once(pair):
    src = pair[0]
    t0 = time.monotonic()
    status = rpc(src, "VM.getMigrationStatus", {"vmID": VM, "waitForChange": {"version": 0, "timeout": 5}})
    assert status["state"] == "idle" and time.monotonic() - t0 < 1


def test_bad_wait_parameter_is_an_invalid_params_error(pair):
    with pytest.raises(JsonRpcError) as err:
        rpc(pair[0], "VM.getMigrationStatus", {"vmID": VM, "waitForChange": {"version": 1, "timeout": 60}})
    assert "waitForChange.timeout" in err.value.message


def test_concurrent_long_polls_over_http_do_not_block_other_calls(pair):
    src, sconn = pair[0], pair[1]
    _slow_migration(sconn, iterations=8, seconds=1.2)
    server = make_server("127.0.0.1", 0, src.methods())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/jsonrpc"
    try:
        JsonRpcClient(url).call("VM.migrate", {"vmID": VM, "params": {"dst": "127.0.0.3"}})
        results: list[dict] = []

        def follow():
            client, seen = JsonRpcClient(url), 0
            while True:
                status = client.call("VM.getMigrationStatus", {"vmID": VM,
                                                               "waitForChange": {"version": seen, "timeout": 5}})
                seen = status["version"]
                if status["state"] in FINAL:
                    results.append(status)
                    return

        followers = [threading.Thread(target=follow) for _ in range(3)]
        for f in followers:
            f.start()
        t0 = time.monotonic()
        plain = JsonRpcClient(url).call("VM.getMigrationStatus", {"vmID": VM})
        assert time.monotonic() - t0 < 1 and plain["state"] in ("pending", "running", "succeeded")
        for f in followers:
            f.join(15)
        assert [r["state"] for r in results] == ["succeeded"] * 3
    finally:
        server.shutdown()
        server.server_close()
