"""Facts §6 (destinations, retries, what the engine keeps of a migration) and §3's concurrency
and hard-limit rules, at their edges."""
import pytest

from ferry.agent.hard_limits import (
    MAX_TIME_LIMIT,
    PROGRESS_LIMIT,
    HardLimits,
    LowMark,
    decide,
    effective_limits,
    observe,
)
from ferry.agent.limits import DEFAULT_MAX_INCOMING, DEFAULT_MAX_OUTGOING, MigrationSlots, default_outgoing_limit
from ferry.engine.destination import MAX_HOSTS, Candidate, Choice, choose_destination, may_rerun
from ferry.engine.migration_outcome import (
    adjustment_texts,
    agent_timeline,
    attempt_summary,
    done_fields,
    engine_state,
    failed_zerocopy_checks,
    failure_reason,
    figures_from_status,
    migration_result,
    progress_percent,
    rerun_decision,
    throughput_mibps,
    vm_on_source,
)
from ferry.protocol.status import JobState, MigrationStatus

MIB = 1024 * 1024


# ---- destination --------------------------------------------------------------------------

def test_rule_6_destination_a_host_of_another_cluster_listed_first_is_skipped():
    hosts = [Candidate("other", "c2", True, 10**6), Candidate("h2", "c1", True, 4096),
             Candidate("h3", "c1", True, 8192, running_migrations=1)]
    choice = choose_destination(hosts, cluster="c1", source="h1", vm_memory_mib=1024)
    assert choice == Choice("h2", ())          # not rejected either: it is simply not a candidate
    only_other = choose_destination(hosts[:1], cluster="c1", source="h1", vm_memory_mib=1024)
    assert only_other == Choice(None, ()) and only_other.reason() == "the cluster has no other host"


def test_rule_6_destination_with_exactly_the_vms_memory_free_fits():
    choice = choose_destination([Candidate("h2", "c1", True, 2048)], cluster="c1", source="h1", vm_memory_mib=2048)
    assert choice.host == "h2" and choice.rejected == ()
    choice = choose_destination([Candidate("h2", "c1", True, 2047)], cluster="c1", source="h1", vm_memory_mib=2048)
    assert choice.host is None
    assert choice.rejected == (("h2", "not enough free memory (2047 MiB < 2048 MiB)"),)
    assert choice.reason() == "h2: not enough free memory (2047 MiB < 2048 MiB)"


def test_rule_6_destination_never_the_source_excluded_and_down_say_why():
    hosts = [Candidate("h1", "c1", True, 10**6), Candidate("h2", "c1", False, 10**6),
             Candidate("h3", "c1", True, 10**6), Candidate("h4", "c1", False, 0)]
    choice = choose_destination(hosts, cluster="c1", source="h1", vm_memory_mib=1, exclude={"h3"})
    assert choice.host is None
    assert choice.rejected == (("h2", "host is not up"), ("h3", "already tried for this migration"),
                               ("h4", "host is not up"))
    assert choice.reason() == "h2: host is not up; h3: already tried for this migration; h4: host is not up"


def test_rule_6_destination_prefers_fewest_migrations_then_most_memory_then_name():
    hosts = [Candidate("b", "c", True, 100), Candidate("a", "c", True, 100), Candidate("z", "c", True, 500, 1),
             Candidate("y", "c", True, None)]
    assert choose_destination(hosts, cluster="c", source="s", vm_memory_mib=1).host == "a"
    hosts.append(Candidate("m", "c", True, 200))
    assert choose_destination(hosts, cluster="c", source="s", vm_memory_mib=1).host == "m"
    # unknown free memory ranks as 0, not as the most
    assert choose_destination([Candidate("y", "c", True, None), Candidate("x", "c", True, 1)],
                              cluster="c", source="s", vm_memory_mib=1).host == "x"


@pytest.mark.parametrize("tried, expected", [(0, True), (MAX_HOSTS - 1, True), (MAX_HOSTS, False)])
def test_rule_6_at_most_three_hosts(tried, expected):
    assert MAX_HOSTS == 3
    assert may_rerun(tried_hosts=tried, vm_on_source=True, cancelled=False, destination_given=False) is expected
    d = rerun_decision(tried=tried, vm_on_source=True, cancelled=False, destination_given=False)
    assert d.rerun is expected
    assert d.why_not == (None if expected else "3 hosts were tried (at most 3)")


@pytest.mark.parametrize("kw, why", [
    (dict(vm_on_source=False, cancelled=False, destination_given=False), "the VM no longer runs on the source host"),
    (dict(vm_on_source=True, cancelled=True, destination_given=False), "the migration was cancelled"),
    (dict(vm_on_source=False, cancelled=True, destination_given=True), "the migration was cancelled"),
    (dict(vm_on_source=True, cancelled=False, destination_given=True), "the destination was given by the user"),
    (dict(vm_on_source=False, cancelled=False, destination_given=True), "the VM no longer runs on the source host"),
])
def test_rule_6_retry_only_while_the_vm_runs_on_the_source(kw, why):
    assert may_rerun(tried_hosts=1, **kw) is False
    assert rerun_decision(tried=1, **kw).why_not == why


@pytest.mark.parametrize("status, expected", [("Up", True), ("Paused", True), ("Migration Source", True),
                                              ("Down", False), (None, False), ("up", False)])
def test_rule_6_vm_on_source(status, expected):
    assert vm_on_source(status) is expected


# ---- what the engine keeps ------------------------------------------------------------------

def status(**kw):
    kw.setdefault("state", JobState.RUNNING)
    return MigrationStatus(**kw)


def test_rule_6_engine_state_final_active_and_idle():
    assert [engine_state(status(state=s)) for s in JobState] == [
        None, None, None, "SUCCEEDED", "FAILED", "CANCELLED", "ABORTED", "FAILED", "FAILED", "FAILED"]


def test_rule_6_engine_progress_clamped_never_backwards_100_on_success():
    assert progress_percent(status(progress=150)) == 100
    assert progress_percent(status(progress=-5)) == 0
    assert progress_percent(status(progress=40), previous=60) == 60
    assert progress_percent(status(progress=True)) == 0
    assert progress_percent(status(state=JobState.SUCCEEDED, progress=10)) == 100
    assert progress_percent(status(progress=33.9)) == 33


@pytest.mark.parametrize("bytes_, millis, expected", [
    (None, 1000, None), (0, 1000, None), (MIB, None, None), (MIB, 0, None), (MIB, -5, None),
    (MIB, 1000, 1.0), (10 * MIB, 4000, 2.5), (MIB, 3000, 0.3), (1, 1, 0.0),
])
def test_rule_6_throughput_edges(bytes_, millis, expected):
    assert throughput_mibps(bytes_, millis) == expected


RESULT_KEYS = ["destination", "agent_state", "error", "duration_ms", "downtime_ms", "bytes", "iterations",
               "throughput_mibps", "figures_complete", "transfer_mibps", "flags", "typed_params",
               "schedule_actions", "unrecognized_params", "notes",
               "dirty_sync_missed_zero_copy", "postcopy", "postcopy_downtime_ms", "auto_converge_throttle_max",
               "wall_s", "hosts_tried", "zerocopy_requested", "parallel_connections",
               "explanation", "plan_notes"]


def test_rule_6_attempt_summary_and_result_keys():
    s = status(state=JobState.SUCCEEDED, error=None, message="done", total_time_ms=2000, downtime_ms=30,
               data_processed=4 * MIB, iteration=3, flags=("VIR_MIGRATE_LIVE",), typed_params={"bandwidth": 5},
               schedule_actions=({"n": 1},), unrecognized_params=("x",), notes=("n",), started_at=1.0)
    a = attempt_summary(s, "h2")
    assert a == {"destination": "h2", "agent_state": "succeeded", "error": None, "message": "done",
                 "duration_ms": 2000, "downtime_ms": 30, "bytes": 4 * MIB, "iterations": 3,
                 "throughput_mibps": 2.0, "flags": ["VIR_MIGRATE_LIVE"], "typed_params": {"bandwidth": 5},
                 "schedule_actions": [{"n": 1}], "unrecognized_params": ["x"], "notes": ["n"],
                 "agent_timeline": {"job_started_at": 1.0},
                 "dirty_sync_missed_zero_copy": None,        # only zero-copy agents report it (QMP)
                 "figures_complete": None, "transfer_mibps": None,   # no remaining figure reported
                 "postcopy": False, "postcopy_downtime_ms": None, "auto_converge_throttle_max": None}
    pc = attempt_summary(status(state=JobState.SUCCEEDED, postcopy=True, downtime_ms=6, postcopy_downtime_ms=6,
                                auto_converge_throttle_max=40), "h2")
    assert (pc["postcopy"], pc["downtime_ms"], pc["postcopy_downtime_ms"], pc["auto_converge_throttle_max"]) == \
        (True, 6, 6, 40)
    assert attempt_summary(status(bytes_transferred=8 * MIB, data_processed=MIB, total_time_ms=1000),
                           "h")["bytes"] == 8 * MIB        # bytes transferred first, then data processed
    plan = {"params": {"zerocopy": True, "parallel": 4}, "explanation": [{"field": "f"}], "notes": ["p"]}
    r = migration_result(a, plan, 12.34567, [{"destination": "h3"}, a])
    assert list(r) == RESULT_KEYS
    assert (r["wall_s"], r["hosts_tried"], r["zerocopy_requested"], r["parallel_connections"]) == (
        12.346, ["h3", "h2"], True, 4)
    assert (r["explanation"], r["plan_notes"], r["throughput_mibps"], r["destination"]) == (
        [{"field": "f"}], ["p"], 2.0, "h2")
    empty = migration_result({}, None, 0, [])
    assert (empty["zerocopy_requested"], empty["parallel_connections"], empty["explanation"],
            empty["plan_notes"], empty["hosts_tried"]) == (False, None, [], [], [])


def test_rule_6_agent_timeline_names():
    s = status(started_at=1, migration_started_at=2, migration_returned_at=3.5, ended_at=4)
    assert agent_timeline(s) == {"job_started_at": 1.0, "libvirt_started_at": 2.0, "libvirt_returned_at": 3.5,
                                 "job_ended_at": 4.0}
    assert agent_timeline(status()) == {}


def test_rule_6_figures_only_what_the_agent_reported():
    s = MigrationStatus.from_wire({"state": "running", "progress": 40, "iteration": 2, "dataTotal": 10,
                                   "postcopy": True, "message": "m"})
    assert figures_from_status(s) == {"agent_state": JobState.RUNNING, "agent_progress": 40, "iteration": 2,
                                      "data_total": 10, "postcopy": True, "message": "m"}


@pytest.mark.parametrize("kw, expected", [
    (dict(error="libvirt said no", message="m"), "libvirt said no"),
    (dict(error=None, message="m"), "m"),
    (dict(error="", message=""), "agent state 'failed'"),
    (dict(), "agent state 'failed'"),
])
def test_rule_6_failure_reason(kw, expected):
    assert failure_reason(status(state=JobState.FAILED, **kw)) == expected


def test_rule_6_done_fields():
    assert done_fields({"duration_ms": 2500, "wall_s": 3.0, "downtime_ms": 40})["downtime"] == "40 ms"
    d = done_fields({})
    assert d["downtime"] == "?" and set(d) == {"duration", "total", "downtime"}
    assert done_fields({"downtime_ms": 0})["downtime"] == "0 ms"


def test_rule_6_adjustment_texts():
    caps = {"zerocopy_checks": [{"result": "fail", "reason": "no MSG_ZEROCOPY"}, {"result": "ok", "reason": "x"},
                                "junk", {"result": "fail", "reason": "memlock"}]}
    assert failed_zerocopy_checks(caps) == ["no MSG_ZEROCOPY", "memlock"]
    assert failed_zerocopy_checks(None) == [] and failed_zerocopy_checks({"zerocopy_checks": None}) == []
    explanation = [
        {"field": "zerocopy", "from": "on", "to": "not sent", "reason": "source host h1 reports zero-copy unsupported"},
        {"field": "zerocopy", "from": "on", "to": "off", "reason": "TLS"},
        {"field": "zerocopy", "from": "on", "to": "sent, unconfirmed", "reason": "old agent"},
        {"field": "parallel", "from": "DISABLED", "to": "AUTO_PARALLEL, 2 connections", "reason": "zero-copy"},
    ]
    assert adjustment_texts(explanation, caps) == [
        "zerocopy not sent: source host h1 reports zero-copy unsupported (agent: no MSG_ZEROCOPY; memlock)",
        "zerocopy off: TLS",
        "zerocopy on → sent, unconfirmed: old agent",
        "parallel DISABLED → AUTO_PARALLEL, 2 connections: zero-copy",
    ]
    assert adjustment_texts(explanation[:1]) == ["zerocopy not sent: source host h1 reports zero-copy unsupported"]
    assert adjustment_texts([]) == []


# ---- §3 concurrency and hard limits ---------------------------------------------------------

def test_rule_3_outgoing_bounded_by_cores_default_2_incoming_2():
    assert (DEFAULT_MAX_OUTGOING, DEFAULT_MAX_INCOMING) == (2, 2)
    assert [default_outgoing_limit(c) for c in (1, 2, 8)] == [1, 2, 2]
    assert default_outgoing_limit(8, maximum=5) == 5 and default_outgoing_limit(0) == 1


def test_rule_3_a_full_destination_does_not_wait():
    slots = MigrationSlots(DEFAULT_MAX_INCOMING)
    assert slots.try_acquire() and slots.try_acquire() and not slots.try_acquire()
    slots.release()
    assert slots.try_acquire(limit=2) and not slots.try_acquire(limit=5)


def test_rule_3_hard_limits_at_their_bounds():
    limits = HardLimits(64, 240)
    mark = observe(LowMark(), 100, now=0.0)
    assert decide(limits, memory_mib=1024, elapsed_s=64.0, mark=mark, now=0.0, postcopy=False).abort is False
    v = decide(limits, memory_mib=1024, elapsed_s=64.1, mark=mark, now=0.0, postcopy=False)
    assert (v.abort, v.limit) == (True, MAX_TIME_LIMIT)
    assert decide(limits, memory_mib=1024, elapsed_s=1, mark=mark, now=240.0, postcopy=False).abort is False
    v = decide(limits, memory_mib=1024, elapsed_s=1, mark=mark, now=240.5, postcopy=False)
    assert (v.abort, v.limit) == (True, PROGRESS_LIMIT)
    assert decide(limits, memory_mib=1024, elapsed_s=10**6, mark=mark, now=10**6, postcopy=True).abort is False
    assert decide(HardLimits(0, 0), memory_mib=1024, elapsed_s=10**6, mark=mark, now=10**6,
                  postcopy=False).abort is False
    assert observe(mark, 100, 5.0) is mark and observe(mark, 99, 5.0) == LowMark(99, 5.0)
    assert effective_limits(HardLimits(1, 2), max_time_per_gib=None, progress_timeout=7, has_schedule=True) == \
        HardLimits(0, 7)


def test_rule_6_done_fields_duration_is_the_agents_milliseconds_in_seconds():
    # VM_MIGRATION_DONE's Duration is the agent's totalTime (ms) shown as oVirt's short duration.
    assert done_fields({"duration_ms": 850, "wall_s": 1.2})["duration"] == "850 ms"
    assert done_fields({"duration_ms": 60000})["duration"] == "1 min 0 s"
    assert done_fields({"duration_ms": 0})["duration"] == "0 ms"
