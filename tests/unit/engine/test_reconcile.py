"""The reconciliation decision: what libvirt on both hosts says decides how a doubtful migration ended."""
from __future__ import annotations

import itertools

import pytest

from ferry.engine.reconcile import (
    DOWN,
    MIGRATION_DESTINATION,
    MIGRATION_SOURCE,
    PAUSED,
    UP,
    HostView,
    Reality,
    reconcile,
    total_seconds,
)
from ferry.protocol.status import JobState

GONE = HostView(vm=None)
CUT = HostView.unreachable()


def view(vm, job=None):
    return HostView(vm=vm, job=job)


VMS = (None, UP, PAUSED, DOWN, MIGRATION_SOURCE, MIGRATION_DESTINATION)
JOBS = (None, *JobState)
ALL_VIEWS = [CUT] + [view(vm, job) for vm, job in itertools.product(VMS, JOBS)]


# ---- the cases of issue 11 ----------------------------------------------------------------------

def test_restarted_source_agent_reporting_idle_while_the_vm_landed_is_success():
    """Issue 11: the restarted agent said "no migration", the VM landed on the destination."""
    v = reconcile(view(None, JobState.IDLE), view(UP, JobState.IDLE))
    assert v.reality is Reality.ON_DESTINATION and v.settled and not v.may_rerun


def test_source_cut_off_while_the_vm_migrated_is_success():
    v = reconcile(CUT, view(UP))
    assert v.reality is Reality.ON_DESTINATION and "cannot be asked" in v.reason


def test_source_cut_off_while_the_destination_receives_is_still_migrating():
    v = reconcile(CUT, view(MIGRATION_DESTINATION, JobState.RUNNING))
    assert v.reality is Reality.MIGRATING and not v.settled and not v.may_rerun


def test_source_cut_off_and_destination_without_the_vm_is_unknown_never_a_rerun():
    v = reconcile(CUT, GONE)
    assert v.reality is Reality.UNKNOWN and not v.may_rerun


def test_timed_out_vm_migrate_with_no_job_yet_is_unknown_not_never_sent():
    v = reconcile(view(UP, JobState.IDLE), GONE, send_in_doubt=True)
    assert v.reality is Reality.UNKNOWN and "may still start" in v.reason


def test_timed_out_vm_migrate_that_did_start_is_followed():
    v = reconcile(view(MIGRATION_SOURCE, JobState.RUNNING), view(MIGRATION_DESTINATION), send_in_doubt=True)
    assert v.reality is Reality.MIGRATING


def test_once_the_doubt_is_over_a_vm_on_the_source_with_no_job_may_rerun():
    v = reconcile(view(UP, JobState.IDLE), GONE)
    assert v.reality is Reality.ON_SOURCE and v.may_rerun


def test_failed_job_with_the_vm_on_the_source_may_rerun():
    v = reconcile(view(UP, JobState.FAILED), view(MIGRATION_DESTINATION, JobState.RUNNING))
    assert v.reality is Reality.ON_SOURCE and v.may_rerun


def test_source_knows_no_job_while_destination_receives_is_unknown():
    """A restarted source agent that has not adopted libvirt's job yet: ask again, start nothing."""
    v = reconcile(view(UP, JobState.IDLE), view(MIGRATION_DESTINATION, JobState.RUNNING))
    assert v.reality is Reality.UNKNOWN


def test_source_copy_paused_by_a_lost_confirm_and_destination_running_is_success():
    v = reconcile(view(PAUSED, JobState.IDLE), view(UP))
    assert v.reality is Reality.ON_DESTINATION and "paused" in v.reason


def test_paused_source_with_destination_unreachable_is_unknown():
    """The destination may have resumed it: libvirt's confirm step may be what was lost."""
    v = reconcile(view(PAUSED, JobState.IDLE), CUT)
    assert v.reality is Reality.UNKNOWN


def test_paused_source_and_destination_without_it_stays_on_source():
    assert reconcile(view(PAUSED, JobState.FAILED), GONE).reality is Reality.ON_SOURCE


def test_paused_arrival_with_no_source_copy_is_on_destination():
    assert reconcile(GONE, view(PAUSED)).reality is Reality.ON_DESTINATION


def test_source_job_succeeded_and_destination_unreachable_trusts_libvirt_on_the_source():
    v = reconcile(view(None, JobState.SUCCEEDED), CUT)
    assert v.reality is Reality.ON_DESTINATION


def test_source_copy_gone_while_destination_finishes_is_migrating():
    assert reconcile(view(None, JobState.IDLE), view(MIGRATION_DESTINATION)).reality is Reality.MIGRATING


def test_vm_on_neither_host_is_nowhere():
    v = reconcile(view(None, JobState.FAILED), view(DOWN))
    assert v.reality is Reality.NOWHERE and v.settled and not v.may_rerun


def test_vm_running_on_both_hosts_is_said_loudly():
    v = reconcile(view(UP, JobState.FAILED), view(UP))
    assert v.reality is Reality.BOTH and "both" in v.reason and not v.may_rerun


def test_nobody_answers_is_unknown():
    assert reconcile(CUT, CUT).reality is Reality.UNKNOWN


def test_source_job_still_active_is_followed_whatever_the_destination_says():
    for dst in ALL_VIEWS:
        assert reconcile(view(UP, JobState.RUNNING), dst).reality is Reality.MIGRATING
        assert reconcile(view(MIGRATION_SOURCE), dst).reality is Reality.MIGRATING


# ---- invariants over every pair of views --------------------------------------------------------

@pytest.mark.parametrize("doubt", [False, True])
def test_every_pair_of_views_gets_a_verdict_with_a_reason(doubt):
    for src, dst in itertools.product(ALL_VIEWS, ALL_VIEWS):
        v = reconcile(src, dst, send_in_doubt=doubt)
        assert isinstance(v.reality, Reality) and v.reason, (src, dst)


@pytest.mark.parametrize("doubt", [False, True])
def test_a_rerun_is_allowed_only_when_libvirt_runs_the_vm_on_the_source_with_no_job(doubt):
    for src, dst in itertools.product(ALL_VIEWS, ALL_VIEWS):
        v = reconcile(src, dst, send_in_doubt=doubt)
        if v.may_rerun:
            assert src.reachable and src.vm in (UP, PAUSED), (src, dst, v)
            assert src.job is None or not src.job.active, (src, dst, v)
            assert not dst.running, (src, dst, v)
            assert not doubt, (src, dst, v)


def test_success_is_never_claimed_unless_the_destination_runs_it_or_the_source_job_completed():
    for src, dst in itertools.product(ALL_VIEWS, ALL_VIEWS):
        v = reconcile(src, dst)
        if v.reality is Reality.ON_DESTINATION:
            assert dst.running or (dst.paused and src.absent) or (src.job is JobState.SUCCEEDED and src.absent), (src, dst)


def test_an_unreachable_source_never_settles_on_the_source():
    for dst in ALL_VIEWS:
        v = reconcile(CUT, dst)
        assert v.reality in (Reality.ON_DESTINATION, Reality.MIGRATING, Reality.UNKNOWN), dst


# ---- durations from the agents' clocks ----------------------------------------------------------

def test_total_counts_from_the_request_to_the_agents_end_not_the_engines_restart():
    """Issue 11: "Total: 42 ms" for a 28 s migration after an engine restart."""
    assert total_seconds(1000.0, {"job_started_at": 1000.5, "job_ended_at": 1028.0}, now=1030.0) == 28.0


def test_total_without_the_agents_end_runs_to_now():
    assert total_seconds(1000.0, {}, now=1012.5) == 12.5
    assert total_seconds(1000.0, None, now=1012.5) == 12.5


def test_total_is_unknown_without_a_request_time_and_never_negative():
    assert total_seconds(None, {"job_ended_at": 5.0}, now=6.0) is None
    assert total_seconds(1000.0, {"job_ended_at": 999.0}, now=1001.0) == 0.0
