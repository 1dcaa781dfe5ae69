"""Force-complete's rules, one per test (ferry.agent.force_complete).

`handle` is the verb's glue: it reads the running job (flags, parallel, figures, post-copy state),
asks `decide`, runs the chosen action through the job's own action path and answers. The job
here is a small stand-in that records the action it is asked to run (the end-to-end path with
the agent and fake libvirt is in test_force_complete.py).
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from ferry.agent.force_complete import MAX_DOWNTIME_MS, MIN_DOWNTIME_MS, decide, handle
from ferry.common.jsonrpc import JsonRpcError
from ferry.protocol.flags import POSTCOPY as POSTCOPY_FLAG
from ferry.protocol.schedule import POSTCOPY, SET_DOWNTIME, Action

VM = "vm-1"
MIB = 1 << 20

NO_POSTCOPY = ("post-copy not allowed: the migration was not started with VIR_MIGRATE_POSTCOPY "
               "(its policy has no post-copy)")
MULTIFD = "post-copy not allowed with parallel connections (QEMU refuses post-copy with multifd)"


class _Job:
    def __init__(self, flags=(), parallel=None, remaining=100 * MIB, bps=50 * MIB, postcopy=False, result=None):
        self.flags = None if flags is None else SimpleNamespace(names=tuple(flags))
        self.params = SimpleNamespace(parallel=parallel)
        self.figures = SimpleNamespace(data_remaining=remaining, memory_bps=bps)
        self._postcopy = postcopy
        self.actions_run = [] if result is None else [{"ok": True}]
        self.result, self.executed = result, []

    def _execute(self, action, iteration):
        self.executed.append((action, iteration))
        if self.result is not None:
            self.actions_run.append(self.result)


class _Agent:
    def __init__(self, job):
        self.job, self.looked_up = job, []

    def _vm_id(self, params):
        return params["vmID"]

    def _running_job(self, vm_id):
        return self.job

    def _lookup(self, vm_id):
        self.looked_up.append(vm_id)


def test_the_decision_reasons_say_what_happened_and_why():
    assert decide(postcopy_flag=True, parallel=None, remaining_bytes=1, bandwidth_bps=1,
                  postcopy_running=True).reason == "the migration is already in post-copy: it ends by itself"
    assert decide(postcopy_flag=True, parallel=None, remaining_bytes=1, bandwidth_bps=1).reason == \
        "switched to post-copy (the migration allows it)"
    d = decide(postcopy_flag=True, parallel=2, remaining_bytes=None, bandwidth_bps=None)
    assert d.reason == f"{MULTIFD}; downtime limit raised to {MAX_DOWNTIME_MS} ms so the rest is sent now"
    d = decide(postcopy_flag=False, parallel=None, remaining_bytes=None, bandwidth_bps=None)
    assert d.reason == f"{NO_POSTCOPY}; downtime limit raised to {MAX_DOWNTIME_MS} ms so the rest is sent now"


def test_with_nothing_left_measured_or_no_bandwidth_the_most_downtime_is_allowed():
    assert decide(postcopy_flag=False, parallel=None, remaining_bytes=0, bandwidth_bps=10**8).downtime_ms == \
        MAX_DOWNTIME_MS
    assert decide(postcopy_flag=False, parallel=None, remaining_bytes=10**8, bandwidth_bps=0).downtime_ms == \
        MAX_DOWNTIME_MS
    assert MIN_DOWNTIME_MS < MAX_DOWNTIME_MS


def test_no_running_migration_is_migcancelerr_naming_the_vm():
    agent = _Agent(None)
    with pytest.raises(JsonRpcError) as e:
        handle(agent, {"vmID": VM})
    assert (e.value.code, e.value.message) == (82, f"Migration not in progress for VM {VM}")
    assert e.value.data == {"name": "migCancelErr", "vmID": VM}
    assert agent.looked_up == [VM]       # an unknown VM is noVM, not migCancelErr


def test_a_postcopy_migration_on_one_connection_is_switched_through_the_jobs_action_path():
    job = _Job(flags=[POSTCOPY_FLAG], result={"ok": True})
    answer = handle(_Agent(job), {"vmID": VM})
    assert job.executed == [(Action(POSTCOPY), None)]
    reason = "switched to post-copy (the migration allows it)"
    assert answer == {"status": {"code": 0, "message": reason}, "mode": "postcopy", "downtimeMs": None,
                      "reason": reason}


def test_without_flags_or_with_parallel_connections_the_downtime_is_raised_to_fit_the_rest():
    for job in (_Job(flags=None, result={"ok": True}), _Job(flags=[POSTCOPY_FLAG], parallel=4, result={"ok": True})):
        answer = handle(_Agent(job), {"vmID": VM})
        # 100 MiB left at 50 MiB/s: 2 s, x1.5
        assert job.executed == [(Action(SET_DOWNTIME, 3000), None)]
        assert (answer["mode"], answer["downtimeMs"], answer["status"]["code"]) == ("downtime", 3000, 0)
        assert answer["status"]["message"] == answer["reason"]


def test_already_in_postcopy_runs_nothing_and_answers_ok_whatever_ran_before():
    job = _Job(flags=[POSTCOPY_FLAG], postcopy=True)
    job.actions_run = [{"ok": False, "error": "an earlier schedule action"}]
    answer = handle(_Agent(job), {"vmID": VM})
    assert job.executed == [] and answer["mode"] == "none" and answer["status"]["code"] == 0


def test_an_action_that_fails_is_migrateerr_with_its_error():
    job = _Job(result={"ok": False, "error": "boom"})
    with pytest.raises(JsonRpcError) as e:
        handle(_Agent(job), {"vmID": VM})
    assert (e.value.code, e.value.message) == (12, "force-complete (downtime) failed: boom")
    assert e.value.data == {"name": "migrateErr"}


def test_an_action_that_left_no_record_counts_as_done():
    job = _Job()
    assert handle(_Agent(job), {"vmID": VM})["status"]["code"] == 0 and job.executed
