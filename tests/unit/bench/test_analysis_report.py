"""From raw records to rows, headline ratios, the report text and the terminal summary."""
from __future__ import annotations

import json

import pytest

from ferry.bench.analysis import headline, mode_rows
from ferry.bench.report import render, write_report
from ferry.bench.summary_text import summary_lines

MACHINE = {"cores": 2, "memory_gib": 23.5, "cpu_model": "Test CPU", "kernel": "6.1", "qemu": "10.0.2",
           "libvirt": "11.3.0", "accelerator": "tcg", "accelerator_reason": "test", "lab_id": 4,
           "lab_hosts": ["ferry4-h1 127.0.4.2"], "iperf3": "iperf 3.12", "load_avg_at_start": [1.0, 1.0, 1.0]}


def mig(driver, repeat, wall, total_ms, tput, *, mode="parallel4", ok=True, verified=True, size=1024, dirty=0,
        zc_state="off"):
    return {"kind": "migrate", "size_mib": size, "dirty_mib_s": dirty, "fill_mib": 864, "mode": mode,
            "streams": 4 if mode != "plain" else 1, "repeat": repeat, "driver": driver, "ok": ok,
            "state": "succeeded" if ok else "failed", "error": None if ok else "boom", "wall_s": wall,
            "figures": {"total_ms": total_ms, "downtime_ms": 100, "iterations": 3, "throughput_mib_s": tput},
            "cpu": {"source": {"total": 0.5, "by_kind": {"send": 0.3, "vcpu": 0.2}},
                    "destination": {"total": 1.5, "by_kind": {"recv": 1.4, "main": 0.1}}},
            "zerocopy": {"state": zc_state, "dirty_sync_missed_zero_copy": 0},
            "flags": ["VIR_MIGRATE_LIVE"], "verified": verified,
            "verify_reasons": [] if verified else ["lost 3 pages"], "source": "h1", "destination": "h2"}


def iperf(repeat, mib_s, mode="parallel4", size=1024, dirty=0):
    return {"kind": "iperf", "size_mib": size, "dirty_mib_s": dirty, "mode": mode, "streams": 4, "repeat": repeat,
            "raw": {"received_mib_s": mib_s}}


RECORDS = [
    iperf(0, 1000), mig("ferry", 0, 2.4, 1000, 500), mig("virsh", 0, 2.0, 1000, 500),
    iperf(1, 800), mig("virsh", 1, 3.0, 1100, 400), mig("ferry", 1, 3.0, 1100, 400),
    iperf(2, 900), mig("ferry", 2, 2.0, 900, 450), mig("virsh", 2, 1.0, 900, 450, ok=False, verified=False),
]


def test_rows_pair_by_repeat_and_skip_failed_partners():
    (row,) = mode_rows(RECORDS)
    assert (row.size_mib, row.mode, row.streams) == (1024, "parallel4", 4)
    assert row.ferry.runs == 3 and row.ferry.failed == 0 and row.virsh.failed == 1
    assert row.ferry.wall_s.median == 2.4 and row.virsh.wall_s.median == 2.5   # failed run left out
    assert sorted([row.overhead.minimum, row.overhead.maximum]) == [1.0, pytest.approx(1.2)]   # repeat 2 has no partner
    assert row.overhead.n == 2
    assert row.efficiency_ferry.median == pytest.approx(0.5) and row.efficiency_ferry.n == 3
    assert row.raw_mib_s.median == 900
    assert row.ferry.cpu_kinds["destination"]["recv"] == 1.4
    assert row.ferry.cpu_kinds["source"]["recv"] is None


def test_headline_collects_all_pairs():
    h = headline(RECORDS)
    assert h.migrations == 6 and h.failed == 1 and h.verified == 5
    assert h.overhead.n == 2 and h.overhead.median == pytest.approx(1.1)
    assert h.efficiency_by_mode["parallel4"].median == pytest.approx(0.5)


def result(records):
    return {"kind": "migrate", "started_at": "2026-01-01T00:00:00+00:00", "ended_at": "2026-01-01T01:00:00+00:00",
            "ferry_path": "ferry-agent", "matrix": {"sizes": [1024], "modes": ["parallel4"], "dirty": [0],
                                                    "repeat": 3, "baselines": True},
            "iperf_seconds": 3, "machine": MACHINE, "records": records}


POLICIES = {"kind": "policies", "started_at": "2026-01-01T00:00:00+00:00", "ended_at": "2026-01-01T00:10:00+00:00",
            "ferry_path": "ferry-agent", "machine": MACHINE,
            "workload": {"memory_mib": 512, "fill_mib": 320, "dirty_mib_s": 32, "cap_mib_s": 40, "repeat": 1},
            "summary": [{"policy": "Minimal downtime", "runs": 1, "converged_runs": 0, "aborted_runs": 1,
                         "other_runs": 0, "time_s": {"median": 30.0, "min": 30.0, "max": 30.0, "n": 1},
                         "downtime_ms": None, "iterations": {"median": 9, "min": 9, "max": 9, "n": 1},
                         "verified": 1, "actions": [{"n": None, "action": "setDowntime(100)"}, {"n": 8, "action": "abort"}],
                         "flags": ["VIR_MIGRATE_LIVE", "VIR_MIGRATE_AUTO_CONVERGE"]}]}


def test_report_states_machine_targets_and_verdicts():
    text = render(result(RECORDS), POLICIES, {"times": "benchmarks/times.png"})
    assert "2 cores (Test CPU), 23.5 GiB RAM" in text and "QEMU 10.0.2, libvirt 11.3.0" in text
    assert "accelerator **tcg**" in text
    assert ("| control-plane overhead (Ferry wall time / bare virsh, paired in the same direction), all runs "
            "| ≤ 1.05x | 1.10x (1.00x–1.20x) | misses |") in text
    assert "| efficiency, parallel4 (Ferry throughput / raw TCP, same streams) | ≥ 0.9x | 0.50x" in text and "misses" in text
    assert "host agents (JSON-RPC" in text
    assert "| Minimal downtime | aborted 1/1 | 30.0 | – | 9 | setDowntime(100), abort@8 | LIVE AUTO_CONVERGE | 1/1 |" in text
    assert "![Times and downtime](benchmarks/times.png)" in text
    assert "Failures: boom" in text
    assert "- 1024 MiB, dirty 0, parallel4, repeat 3, virsh (h1 → h2): lost 3 pages" in text


def test_write_report_keeps_the_other_benchmarks_section(tmp_path):
    pytest.importorskip("matplotlib")
    report = tmp_path / "benchmarks.md"
    write_report(report, POLICIES)
    write_report(report, result(RECORDS))
    text = report.read_text()
    assert "## Migrations" in text and "## Convergence under the built-in policies" in text
    # Another benchmark's block and a note by hand survive a rerun byte for byte.
    others = "\n\nA note by hand.\n\n<!-- ferry-bench:scale begin -->\nscale\n<!-- ferry-bench:scale end -->\n"
    report.write_text(text + others)
    write_report(report, result(RECORDS))
    write_report(report, POLICIES)
    assert report.read_text() == text + others
    for name in ("times.png", "throughput.png", "cpu.png", "policies.png", "migrate.json", "policies.json"):
        assert (tmp_path / "benchmarks" / name).stat().st_size > 0
    assert (tmp_path / "benchmarks" / "times.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "benchmarks" / "migrate.json").read_text())["records"] == RECORDS


def test_terminal_summary():
    lines = summary_lines(result(RECORDS))
    assert any(line.startswith("1024MiB d0 parallel4") and "ferry" in line for line in lines)
    assert "control-plane overhead (Ferry/virsh wall time): 1.10x (1.00x–1.20x) (target <= 1.05x: misses)" in lines
    assert lines[-1] == "6 migrations, 1 failed, 5 memory verified"
    pol = summary_lines(POLICIES)
    assert pol[1].split()[:2] == ["Minimal", "downtime"] and "1/1 aborted" in pol[1]


def test_pairs_are_made_in_the_same_direction():
    from ferry.bench.analysis import same_direction_pairs

    def run(driver, rep, src, dst, wall, ok=True):
        return {**mig(driver, rep, wall, 1000, 500, ok=ok), "source": src, "destination": dst}

    # repeat 0: Ferry h1->h2 then virsh h2->h1; repeat 1: virsh h1->h2 then Ferry h2->h1
    ferry = [run("ferry", 0, "h1", "h2", 9.0), run("ferry", 1, "h2", "h1", 3.0)]
    virsh = [run("virsh", 0, "h2", "h1", 2.0), run("virsh", 1, "h1", "h2", 8.0)]
    pairs = [(f["wall_s"], v["wall_s"]) for f, v in same_direction_pairs(ferry, virsh)]
    assert pairs == [(9.0, 8.0), (3.0, 2.0)]
    (row,) = mode_rows([*ferry, *virsh])
    assert sorted([row.overhead.minimum, row.overhead.maximum]) == [pytest.approx(1.125), pytest.approx(1.5)]
    # a failed run drops out of its direction's pairs
    assert same_direction_pairs([run("ferry", 0, "h1", "h2", 9.0, ok=False)], virsh) == []
    text = render(result([*ferry, *virsh]), None, {})
    assert "Throughput of every successful migration by direction" in text and "h1 → h2 500 MiB/s (Ferry 1 runs, virsh 1)" in text


def test_report_breaks_down_where_ferrys_time_goes_when_runs_carry_timestamps():
    from tests.unit.bench.test_timeline import detail

    records = [dict(r) for r in RECORDS]
    for r in records:
        if r.get("driver") == "ferry":
            r["driver_detail"] = detail()
    res = {**result(records), "ferry_path": "ferry-engine"}
    text = render(res, None, {})
    assert "### Where Ferry's wall time goes" in text and "(3 successful Ferry runs;" in text
    assert "| VM.migrate to the source agent | 0.010 | yes |" in text
    assert "| **control plane in all** | **0.060** | yes |" in text
    assert "long polls" in text
    assert "Where Ferry's wall time goes" not in render(result(RECORDS), None, {})
