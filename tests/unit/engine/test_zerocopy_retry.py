"""Zero-copy that fails at start is retried at once on the same destination without it
(issue 15 item 5; Ferry differs from oVirt, which just fails)."""
from __future__ import annotations

from ferry.engine import audit
from ferry.engine.zerocopy_retry import plan_without_zerocopy, retry_reason
from tests.unit.engine.test_orchestrator import env, events, succeeded, wait_final  # noqa: F401

LOCK_ERROR = "internal error: qemu unexpectedly failed: Process can't lock enough memory for using MSG_ZEROCOPY"


def test_only_a_memory_locking_failure_of_a_zero_copy_migration_is_retried():
    assert retry_reason({"zerocopy": True}, LOCK_ERROR).startswith("zero-copy could not start: internal error")
    assert retry_reason({"zerocopy": True}, "cannot limit locked memory of process 7 to 1073741824") is not None
    assert retry_reason({"zerocopy": False}, LOCK_ERROR) is None      # the retry itself: no second retry
    assert retry_reason({}, LOCK_ERROR) is None
    assert retry_reason({"zerocopy": True}, "connection refused") is None
    assert retry_reason({"zerocopy": True}, None) is None


def test_the_retry_plan_keeps_everything_but_zero_copy_and_explains_it():
    plan = {"destination": "h2", "params": {"dst": "h2", "zerocopy": True, "parallel": 4},
            "libvirt_flags": ["VIR_MIGRATE_LIVE", "VIR_MIGRATE_ZEROCOPY"], "explanation": []}
    new = plan_without_zerocopy(plan, "zero-copy could not start: x")
    assert new["params"] == {"dst": "h2", "parallel": 4} and new["destination"] == "h2"
    assert new["libvirt_flags"] == ["VIR_MIGRATE_LIVE"]
    assert new["explanation"][-1]["field"] == "zerocopy" and "retried without zero-copy" in new["explanation"][-1]["reason"]
    assert plan["params"]["zerocopy"] is True      # the original is not changed


def test_orchestrator_retries_the_same_host_without_zero_copy_with_an_event(env):  # noqa: F811
    db, world, orch, uuid = env
    src = world.agent("h1")
    src.script = [{"state": "failed", "error": LOCK_ERROR}, succeeded()]
    m = orch.migrate("vm1", to="h2")
    assert m.plan["params"].get("zerocopy") is True
    final = wait_final(db, m.id)
    assert final.state.value == "SUCCEEDED" and final.destination == "h2"
    sent = [p["params"] for method, p in src.calls if method == "VM.migrate"]
    assert len(sent) == 2 and sent[0]["zerocopy"] is True and "zerocopy" not in sent[1]
    assert sent[0]["dst"] == sent[1]["dst"]
    retry = [e for e in events(db, m.id) if e.code == audit.FERRY_ZEROCOPY_RETRY.code]
    assert len(retry) == 1 and "lock enough memory" in retry[0].message and "h2" in retry[0].message


def test_the_retry_plan_records_the_change_as_an_explanation_row_and_keeps_earlier_rows():
    earlier = {"field": "parallel", "from": "off", "to": "4", "reason": "policy"}
    plan = {"params": {"zerocopy": True}, "libvirt_flags": ["VIR_MIGRATE_ZEROCOPY"], "explanation": [earlier]}
    new = plan_without_zerocopy(plan, "zero-copy could not start: x")
    assert new["explanation"] == [earlier, {"field": "zerocopy", "from": "true", "to": "false",
                                            "reason": "retried without zero-copy: zero-copy could not start: x"}]
    assert new["zerocopy_retry"] == "zero-copy could not start: x"
    bare = plan_without_zerocopy({}, "r")
    assert bare == {"params": {}, "libvirt_flags": [], "zerocopy_retry": "r",
                    "explanation": [{"field": "zerocopy", "from": "true", "to": "false",
                                     "reason": "retried without zero-copy: r"}]}
