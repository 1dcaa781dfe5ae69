"""The fault matrix's judgement and report (ferry.bench.faults), without a lab."""
from __future__ import annotations

from click.testing import CliRunner

from ferry.bench.faults import FAULTS, QUICK, FaultRun, _overlapping, report_markdown
from ferry.cli.main import cli


def run(fault="cancel", **kw):
    base = dict(record="CANCELLED", source="h1", destination="h2", engine_host="h1", reality="h1",
                running_copies=1, intact=True)
    return FaultRun(fault, **{**base, **kw})


def test_a_failed_record_with_the_vm_on_the_source_is_ok():
    assert run().consistent and run().ok


def test_a_failed_record_while_the_vm_landed_is_not_consistent():
    """Issue 11: the record stayed FAILED, the VM ran on the destination."""
    r = run(record="FAILED", reality="h2", engine_host="h1")
    assert not r.consistent and not r.ok


def test_success_must_be_on_the_records_destination_and_the_inventory_must_agree():
    assert run(record="SUCCEEDED", reality="h2", engine_host="h2").ok
    assert not run(record="SUCCEEDED", reality="h1", engine_host="h1").consistent
    assert not run(record="SUCCEEDED", reality="h2", engine_host="h1").consistent


def test_two_copies_not_intact_or_a_concurrent_attempt_is_not_ok():
    assert not run(running_copies=2).ok
    assert not run(intact=False).ok
    assert not run(concurrent=True).ok
    assert not run(record=None).ok and not run(reality=None).ok


def test_a_vm_that_died_is_consistent_only_with_a_record_that_did_not_succeed_and_no_host():
    died = run(record="FAILED", reality=None, running_copies=0, engine_host=None, intact=None)
    assert died.consistent and not died.ok           # the record is true, but the VM was lost
    assert not run(record="SUCCEEDED", reality=None, running_copies=0, engine_host=None).consistent
    assert not run(record="FAILED", reality=None, running_copies=0, engine_host="h1").consistent


def test_overlapping_attempt_windows_are_concurrent():
    a = {"agent_timeline": {"job_started_at": 10.0, "job_ended_at": 20.0}}
    b_after = {"agent_timeline": {"job_started_at": 21.0, "job_ended_at": 30.0}}
    b_during = {"agent_timeline": {"job_started_at": 15.0, "job_ended_at": 30.0}}
    assert not _overlapping([a, b_after]) and _overlapping([a, b_during]) and not _overlapping([a, {}])


def test_report_counts_each_fault_and_lists_the_runs_that_were_not_ok():
    text = report_markdown([run(), run(), run("source-cut-30s", record="FAILED", reality="h2")],
                           lab_id=1, when="now")
    assert "| cancel | 2 | 2/2 | CANCELLED 2 | source 2 | 2/2 | 2/2 | 2/2 | 2/2 |" in text
    assert "| source-cut-30s | 1 | 0/1 | FAILED 1 | destination 1 | 0/1 |" in text
    assert "## Runs that were not ok" in text and "- source-cut-30s: record FAILED" in text


def test_the_matrix_holds_every_fault_of_the_issue_and_make_test_runs_three():
    assert len(FAULTS) == 9 and set(QUICK) == {"source-agent-restart", "source-cut-30s", "engine-sigkill"}


def test_cli_refuses_an_unknown_fault_naming_the_option():
    result = CliRunner().invoke(cli, ["bench", "faults", "--faults", "engine-sigkill,nope"])
    assert result.exit_code != 0 and "--faults" in result.output and "nope" in result.output
