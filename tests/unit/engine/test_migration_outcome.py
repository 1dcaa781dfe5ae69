"""What an agent's migration status means to the engine (ferry.engine.migration_outcome)."""
import pytest

from ferry.engine import migration_outcome as o
from ferry.protocol.status import MigrationStatus

S = MigrationStatus.from_wire   # the engine reads an agent's answer with it

MIB = 2**20


@pytest.mark.parametrize("agent_state, engine", [
    ("pending", None), ("waiting", None), ("running", None),
    ("succeeded", "SUCCEEDED"), ("failed", "FAILED"), ("cancelled", "CANCELLED"), ("aborted", "ABORTED"),
    ("idle", "FAILED"), (None, "FAILED"),
])
def test_engine_state(agent_state, engine):
    assert o.engine_state(S({"state": agent_state})) == engine


def test_progress_is_the_agents_never_backwards_and_100_on_success():
    running = {"state": "running", "dataTotal": 1000 * MIB, "dataRemaining": 250 * MIB, "progress": 75}
    assert o.progress_percent(S(running)) == 75
    assert o.progress_percent(S({**running, "progress": 40}), previous=75) == 75   # a re-dirtied pass
    assert o.progress_percent(S({"state": "running"})) == 0                        # nothing known yet
    assert o.progress_percent(S({"state": "running", "progress": 250})) == 100     # out of range: clamped
    assert o.progress_percent(S({"state": "succeeded", "progress": 0}), previous=12) == 100


def test_figures_use_engine_names_and_keep_only_known_keys():
    f = o.figures_from_status(S({"state": "running", "iteration": 3, "bandwidth": 5 * MIB, "maxDowntime": 300,
                                 "dataRemaining": 7, "flags": ["X"], "progress": 100}))
    assert f == {"agent_state": "running", "iteration": 3, "bandwidth_bps": 5 * MIB, "max_downtime_ms": 300,
                 "data_remaining": 7, "agent_progress": 100}


def test_attempt_and_result_carry_figures_flags_and_the_plans_explanation():
    status = {"state": "succeeded", "totalTime": 2000, "downtime": 80, "bytesTransferred": 1000 * MIB,
              "iteration": 4, "flags": ["VIR_MIGRATE_ZEROCOPY"], "typedParams": {"parallel.connections": 2},
              "scheduleActions": [{"action": "setDowntime(300)"}], "unrecognizedParams": []}
    attempt = o.attempt_summary(S(status), "h2")
    assert attempt["throughput_mibps"] == 500.0 and attempt["destination"] == "h2"
    plan = {"params": {"zerocopy": True, "parallel": 2},
            "explanation": [{"field": "parallel", "from": "DISABLED", "to": "AUTO_PARALLEL", "reason": "r"}]}
    result = o.migration_result(attempt, plan, 3.21, [attempt])
    assert result["duration_ms"] == 2000 and result["downtime_ms"] == 80 and result["iterations"] == 4
    assert result["flags"] == ["VIR_MIGRATE_ZEROCOPY"] and result["zerocopy_requested"] is True
    assert result["explanation"] == plan["explanation"] and result["hosts_tried"] == ["h2"]
    assert o.done_fields(result) == {"duration": "2.0 s", "total": "3.2 s", "downtime": "80 ms"}


def test_missed_zero_copy_syncs_are_a_live_figure_and_kept_in_the_result():
    running = S({"state": "running", "dirtySyncMissedZeroCopy": 5})
    assert o.figures_from_status(running)["dirty_sync_missed_zero_copy"] == 5
    assert "dirty_sync_missed_zero_copy" not in o.figures_from_status(S({"state": "running"}))
    attempt = o.attempt_summary(S({"state": "succeeded", "dirtySyncMissedZeroCopy": 7}), "h2")
    assert o.migration_result(attempt, {}, 1.0, [attempt])["dirty_sync_missed_zero_copy"] == 7
    older = o.attempt_summary(S({"state": "succeeded"}), "h2")
    assert o.migration_result(older, {}, 1.0, [older])["dirty_sync_missed_zero_copy"] is None


def test_attempt_keeps_the_agents_timeline_when_reported():
    status = {"state": "succeeded", "startedAt": 100.0, "migrationStartedAt": 100.02,
              "migrationReturnedAt": 103.5, "endedAt": 103.51, "totalTime": 2000}
    assert o.attempt_summary(S(status), "h2")["agent_timeline"] == {
        "job_started_at": 100.0, "libvirt_started_at": 100.02, "libvirt_returned_at": 103.5, "job_ended_at": 103.51}
    older_agent = {"state": "failed", "startedAt": 100, "endedAt": None, "migrationStartedAt": True}
    assert o.attempt_summary(S(older_agent), "h2")["agent_timeline"] == {"job_started_at": 100.0}


def test_throughput_needs_bytes_and_time():
    assert o.throughput_mibps(None, 10) is None and o.throughput_mibps(MIB, 0) is None
    assert o.throughput_mibps(10 * MIB, 500) == 20.0


@pytest.mark.parametrize("status, on_source", [
    ("Up", True), ("Paused", True), ("Migration Source", True), ("Down", False), (None, False)])
def test_vm_on_source(status, on_source):
    assert o.vm_on_source(status) is on_source


def test_adjustments_say_why_zerocopy_was_not_sent_with_the_agents_reason():
    explanation = [
        {"field": "zerocopy", "from": "on (policy Very large VMs)", "to": "not sent",
         "reason": "source host h1 reports zero-copy unsupported"},
        {"field": "parallel", "from": "DISABLED", "to": "AUTO_PARALLEL, 2 connections", "reason": "required"},
    ]
    caps = {"zerocopy_checks": [{"check": "admin_disabled", "result": "fail", "reason": "turned off: old kernel"},
                                {"check": "memlock", "result": "warn", "reason": "not this one"}]}
    lines = o.adjustment_texts(explanation, caps)
    assert lines == ["zerocopy not sent: source host h1 reports zero-copy unsupported "
                     "(agent: turned off: old kernel)",
                     "parallel DISABLED → AUTO_PARALLEL, 2 connections: required"]
    assert o.adjustment_texts([{"field": "zerocopy", "to": "off", "reason": "encryption"}], caps) == \
        ["zerocopy off: encryption"]


@pytest.mark.parametrize("kw, rerun, why", [
    ({"tried": 1}, True, None),
    ({"tried": 2}, True, None),
    ({"tried": 3}, False, "3 hosts were tried (at most 3)"),
    ({"tried": 1, "cancelled": True}, False, "the migration was cancelled"),
    ({"tried": 1, "vm_on_source": False}, False, "the VM no longer runs on the source host"),
    ({"tried": 1, "destination_given": True}, False, "the destination was given by the user"),
])
def test_rerun_decision(kw, rerun, why):
    args = {"vm_on_source": True, "cancelled": False, "destination_given": False, **kw}
    d = o.rerun_decision(**args)
    assert (d.rerun, d.why_not) == (rerun, why)


def test_pass_start_is_noted_when_the_iteration_changes_and_kept_while_it_does_not():
    from ferry.engine.migration_outcome import with_pass_start
    first = with_pass_start({"iteration": 1, "time_elapsed_ms": 3000}, None)
    assert first["pass_started_ms"] == 0                      # QEMU's first pass starts with the job
    same = with_pass_start({"iteration": 1, "time_elapsed_ms": 4000}, first)
    assert same["pass_started_ms"] == 0
    nxt = with_pass_start({"iteration": 2, "time_elapsed_ms": 5000}, same)
    assert nxt["pass_started_ms"] == 5000
    assert with_pass_start({"iteration": 2, "time_elapsed_ms": 5600}, nxt)["pass_started_ms"] == 5000
    assert with_pass_start({"iteration": 4, "time_elapsed_ms": 9000}, None)["pass_started_ms"] == 9000
    assert "pass_started_ms" not in with_pass_start({"iteration": 2}, nxt)   # nothing to date it by


def test_the_result_keeps_qemus_transfer_rate_only_when_the_figures_cover_the_whole_migration():
    """The lab's calibration: 338 MiB in 1479 ms of QEMU time read 229 MiB/s as bytes/time;
    QEMU's own completed figure (setup excluded) was 278 MiB/s."""
    done = {"state": "succeeded", "totalTime": 1479, "bytesTransferred": 338 * MIB, "dataRemaining": 0,
            "bandwidth": 278 * MIB}
    attempt = o.attempt_summary(S(done), "h2")
    assert attempt["throughput_mibps"] == 228.5
    assert (attempt["figures_complete"], attempt["transfer_mibps"]) == (True, 278.0)
    # no job-completed event: the last polled figures, 0.4 MiB sent, 58 MiB still to go
    polled = {**done, "bytesTransferred": MIB // 2, "totalTime": 1250, "dataRemaining": 58 * MIB}
    attempt = o.attempt_summary(S(polled), "h2")
    assert (attempt["figures_complete"], attempt["transfer_mibps"]) == (False, None)
    result = o.migration_result(attempt, {}, 3.0, [attempt])
    assert result["figures_complete"] is False and result["transfer_mibps"] is None
