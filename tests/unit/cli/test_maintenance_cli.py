"""What `ferry host maintenance --wait` shows, and when it stops (ferry.cli.maintenance)."""
from __future__ import annotations

from click.testing import CliRunner

from ferry.cli.main import cli
from ferry.cli.maintenance import finished, force_complete_text, running_line, summary_line, view_lines

MIB = 1 << 20


def view(**over):
    v = {"host": "h1", "host_status": "PREPARING_FOR_MAINTENANCE", "state": "ACTIVE", "vms_total": 4,
         "vms_done": 1, "vms_running": 1, "vms_queued": 2, "bytes_done": 300 * MIB,
         "bytes_expected": 1200 * MIB, "eta_seconds": 12.4, "stuck": [],
         "running": [{"vm": "a", "destination": "h2", "progress": 40, "bytes": 120 * MIB,
                      "eta_seconds": 6.0, "paused_vm": True}]}
    v.update(over)
    return v


def test_summary_line_has_done_total_bytes_and_the_drains_eta():
    assert summary_line(view()) == ("host h1 PREPARING_FOR_MAINTENANCE (drain ACTIVE): 1/4 VMs moved, "
                                    "1 migrating, 2 queued; 300 MiB of 1.2 GiB; ETA 12 s")


def test_one_line_per_running_migration_says_when_the_vm_is_paused():
    assert running_line(view()["running"][0]) == "  VM a (paused VM) → h2: 40%, 120 MiB, ETA 6.0 s"
    lines = view_lines(view(stuck=[{"vm": "x", "state": "blocked", "reason": "h2: host is DOWN"}]))
    assert lines[1].startswith("  VM a") and lines[2] == "  VM x blocked: h2: host is DOWN"


def test_waiting_stops_when_done_cancelled_or_only_stuck_vms_are_left():
    assert finished(view(state="DONE")) and finished(view(state="CANCELLED"))
    assert not finished(view())
    stuck = [{"vm": "x", "state": "failed", "reason": "failed on 3 hosts"}]
    assert finished(view(vms_running=0, vms_queued=0, stuck=stuck))
    assert not finished(view(state="PAUSED", vms_running=0, vms_queued=0, stuck=stuck))


def test_force_complete_says_which_happened():
    r = {"migration_id": "m1", "vm": "a", "mode": "downtime", "downtime_ms": 4000, "reason": "no post-copy"}
    assert force_complete_text(r) == "migration m1 of VM a: downtime limit raised to 4000 ms (no post-copy)"
    assert "switched to post-copy" in force_complete_text({**r, "mode": "postcopy"})


def test_abort_running_without_cancel_is_refused_naming_the_option():
    result = CliRunner().invoke(cli, ["host", "maintenance", "h1", "--abort-running"],
                                env={"FERRY_ENGINE_URL": "http://127.0.0.1:9"})
    assert result.exit_code != 0 and "abort_running" in result.output
