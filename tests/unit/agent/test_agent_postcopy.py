"""The post-copy switch as the migration job runs it (issue 13 item 5, facts §3)."""
from tests.unit.agent.fake_libvirt import iterating_script
from tests.unit.agent.test_agent_api import VM, pair, rpc, wait_final  # noqa: F401 - pair is a fixture

POSTCOPY_THEN_ABORT = {"init": [], "stalling": [
    {"limit": -1, "action": {"name": "postcopy", "params": []}},
    {"limit": -1, "action": {"name": "abort", "params": []}}]}


def migrate(src, **params):
    rpc(src, "VM.migrate", {"vmID": VM, "params": {"dst": "127.0.1.3", "convergenceSchedule": POSTCOPY_THEN_ABORT,
                                                   **params}})
    return wait_final(src)


def test_rule_failed_postcopy_switch_runs_the_next_item_the_abort(pair):
    src, sconn = pair[:2]
    dom = sconn.domains[VM]
    dom.postcopy_error = "Requested operation is not valid: post-copy migration was not enabled"
    dom.migration_script = iterating_script(range(1, 8), pause=0.05)
    status = migrate(src)
    assert status["state"] == "aborted", status
    actions = [(a["action"], a["ok"]) for a in status["scheduleActions"]]
    assert actions == [("postcopy", False), ("abort", True)]
    assert "post-copy migration was not enabled" in status["scheduleActions"][0]["error"]
    assert status["postcopy"] is False
    assert sconn.domains[VM].running           # a failed migration leaves the VM here


def test_postcopy_started_event_stops_the_schedule(pair):
    src, sconn = pair[:2]
    sconn.domains[VM].migration_script = iterating_script(range(1, 8), pause=0.05)
    status = migrate(src)
    assert status["state"] == "succeeded", status
    assert [a["action"] for a in status["scheduleActions"]] == ["postcopy"]
    assert status["postcopy"] is True


def test_postcopy_without_its_event_is_seen_from_the_domain_state(pair):
    """No SUSPENDED_POSTCOPY event: a poll sees the source paused for post-copy; no abort runs."""
    src, sconn = pair[:2]
    dom = sconn.domains[VM]
    dom.postcopy_event = False
    dom.migration_script = iterating_script(range(1, 12), pause=0.08)
    status = migrate(src)
    assert status["state"] == "succeeded", status
    assert [a["action"] for a in status["scheduleActions"]] == ["postcopy"]
    assert status["postcopy"] is True
    assert sconn.named_calls("abortJob") == []
