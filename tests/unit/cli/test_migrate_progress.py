"""What the terminal shows of a migration: the live line, the summary, event rows (pure)."""
import pytest

from ferry.cli.progress import event_line, format_mib, format_ms, format_rate, progress_line, summary_line

MIB = 2**20


def running(**figures):
    return {"vm": "vm1", "state": "RUNNING", "progress": 42, "source": "h1", "destination": "h2",
            "figures": {"agent_state": "running", **figures}}


@pytest.mark.parametrize("n, text", [(None, "?"), (0, "0 MiB"), (3.2 * MIB, "3.2 MiB"), (812 * MIB, "812 MiB"),
                                     (1536 * MIB, "1.5 GiB")])
def test_format_mib(n, text):
    assert format_mib(n) == text


@pytest.mark.parametrize("ms, text", [(None, "?"), (75, "75 ms"), (999, "999 ms"), (2083, "2.1 s"),
                                      (61_000, "1 min 1 s")])
def test_format_ms(ms, text):
    assert format_ms(ms) == text


def test_format_rate():
    assert (format_rate(512 * MIB), format_rate(1.5 * MIB), format_rate(None)) == ("512 MiB/s", "1.5 MiB/s",
                                                                                  "? MiB/s")


def test_progress_line_has_percent_rate_remaining_iteration_downtime_and_route():
    line = progress_line(running(bandwidth_bps=512 * MIB, data_total=1000 * MIB, data_remaining=380 * MIB,
                                 iteration=2, max_downtime_ms=300))
    assert line == "42% · 512 MiB/s · 380 MiB left · iteration 2 · max downtime 300 ms · h1 → h2"


def test_progress_line_before_figures_and_while_waiting_and_cancelling():
    assert progress_line({**running(), "figures": None, "progress": 0}) == "0% · starting · h1 → h2"
    assert progress_line(running(agent_state="waiting")) == "42% · waiting for the destination · h1 → h2"
    cancelling = {**running(bandwidth_bps=MIB), "state": "CANCELLING"}
    assert progress_line(cancelling).endswith("· cancelling · h1 → h2")
    # no total yet: nothing "left" is claimed
    assert "left" not in progress_line(running(bandwidth_bps=MIB))


def test_summary_of_a_success_names_the_mode_and_figures():
    m = {"vm": "vm1", "state": "SUCCEEDED", "source": "h1", "destination": "h3",
         "result": {"duration_ms": 2083, "downtime_ms": 75, "bytes": 993 * MIB, "throughput_mibps": 442.2,
                    "iterations": 4, "flags": ["VIR_MIGRATE_PARALLEL", "VIR_MIGRATE_ZEROCOPY"],
                    "typed_params": {"parallel.connections": 2}, "hosts_tried": ["h2", "h3"]}}
    assert summary_line(m) == ("VM vm1 migrated h1 → h3 after trying h2 in 2.1 s, downtime 75 ms, "
                               "993 MiB at 442 MiB/s, 4 iterations, zero-copy x2")
    plain = {**m, "result": {**m["result"], "flags": [], "hosts_tried": ["h3"], "iterations": 1}}
    assert summary_line(plain).endswith("1 iteration")


def test_summary_of_a_failure_says_why_and_where_the_vm_runs():
    m = {"vm": "vm1", "state": "CANCELLED", "source": "h1", "destination": "h2", "error": "operation aborted",
         "vm_host": "h1", "result": {}}
    assert summary_line(m) == "VM vm1: migration h1 → h2 cancelled: operation aborted; the VM runs on h1"


def test_event_line():
    e = {"time": "2026-01-02T10:11:12.123+00:00", "code": 63, "severity": "normal", "message": "Migration completed"}
    assert event_line(e) == "2026-01-02 10:11:12    63 normal   Migration completed"


def test_progress_line_without_route_for_the_bar():
    line = progress_line(running(bandwidth_bps=MIB, data_total=10 * MIB, data_remaining=MIB), route=False)
    assert line == "42% · 1.0 MiB/s · 1.0 MiB left"
