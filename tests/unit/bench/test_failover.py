"""The failover measurement's pure parts (ferry.bench.failover): VM.migrate counted from an
agent log, and the summary of takeover times."""
from __future__ import annotations

from ferry.bench.failover import send_counts, summary


def test_send_counts_reads_each_vms_migration_starts_from_the_offset(tmp_path):
    log = tmp_path / "agent.log"
    before = "2026 INFO ferry.agent: VM ha-1: migrating to qemu+tls://x flags=[] params={}\n"
    log.write_text(before + "VM ha-1: migrating to qemu+tls://y\nVM ha-2: migrating to z\nVM ha-10: migrating to w\n"
                   "VM ha-2: migration bandwidth set to 3 MiB/s\n")
    assert send_counts(log, ["ha-1", "ha-2", "ha-3"]) == {"ha-1": 2, "ha-2": 1, "ha-3": 0}
    assert send_counts(log, ["ha-1", "ha-2"], since=len(before)) == {"ha-1": 1, "ha-2": 1}
    assert send_counts(tmp_path / "missing.log", ["ha-1"]) == {"ha-1": 0}


def test_summary_gives_each_run_the_worst_and_the_bound():
    out = summary([9.04, 11.96, 10.3])
    assert out == {"runs": 3, "takeover_s": [9.0, 12.0, 10.3], "max_s": 12.0, "bound_s": 12.0}
    assert summary([])["max_s"] is None
