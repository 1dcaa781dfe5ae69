"""`ferry bench forecast`'s pure parts: the matrix, cases, cluster settings, outcomes, the report."""
from __future__ import annotations

import pytest

from ferry.bench import forecast_bench as fb
from ferry.bench import forecast_report as fr
from ferry.common.errors import InvalidInput


def test_the_default_is_issue_14s_full_matrix():
    cases = fb.full_matrix()
    assert {c.size_mib for c in cases} == {512, 1024, 2048, 4096, 8192}
    assert {c.touched_pct for c in cases} == {20, 50, 80, 95}
    assert {c.cap_mib_s for c in cases} == {30, 100, 300, 1000}
    assert {c.mode for c in cases} == {"plain", "parallel4", "zerocopy4"}
    assert len({c.policy for c in cases}) >= 3
    assert any(c.dirty_mib_s > c.cap_mib_s for c in cases) and any(c.dirty_mib_s == 0 for c in cases)
    assert all(c.dirty_mib_s * 2 <= c.fill_mib for c in cases)      # what the guest's fill can carry
    keys = [c.guest_key for c in cases]
    assert keys == sorted(keys)                                     # one boot per guest


def test_parse_case():
    c = fb.parse_case("512:60:32:40:zerocopy4:Very large VMs")
    assert (c.size_mib, c.fill_mib, c.dirty_mib_s, c.cap_mib_s, c.parallel, c.policy) == (
        512, 307, 32, 40, 4, "Very large VMs")


@pytest.mark.parametrize("text, field", [
    ("512:60:32:40:plain", "case"), ("512:x:32:40:plain:Legacy", "case"),
    ("512:60:32:40:fast:Legacy", "mode"), ("512:60:200:40:plain:Legacy", "dirty"),
    ("512:0:0:40:plain:Legacy", "touched"), ("512:60:0:40:plain:Fastest", "policy"),
])
def test_bad_cases_name_the_field(text, field):
    with pytest.raises(InvalidInput) as err:
        fb.parse_case(text)
    assert err.value.field == field


def test_cluster_bandwidth_is_divided_down_to_the_cap_by_the_policys_migrations():
    md = fb.cluster_for(fb.parse_case("512:60:0:40:plain:Minimal downtime"))     # maxMigrations 2
    assert md["bandwidth"] == {"mode": "CUSTOM", "custom_mbps": 640} and md["parallel"] == {"mode": "DISABLED"}
    vl = fb.cluster_for(fb.parse_case("512:60:0:40:zerocopy4:Very large VMs"))   # maxMigrations 1
    assert vl["bandwidth"]["custom_mbps"] == 320 and vl["parallel"] == {"mode": "CUSTOM", "connections": 4}


@pytest.mark.parametrize("record, outcome", [
    ({"state": "SUCCEEDED", "result": {"schedule_actions": [{"action": "setDowntime(150)"}]}}, "converge"),
    ({"state": "SUCCEEDED", "result": {"schedule_actions": [{"action": "postcopy", "ok": True}]}}, "postcopy"),
    ({"state": "ABORTED"}, "abort"), ({"state": "FAILED"}, "failed"),
])
def test_actual_outcome(record, outcome):
    assert fb.actual_outcome(record) == outcome


def run(f_out, f_total, a_out, a_wall, f_dt=None, a_dt=None, eta=None):
    return {"case": {"size_mib": 512, "touched_pct": 60, "dirty_mib_s": 0, "cap_mib_s": 40, "mode": "plain",
                     "policy": "Legacy"},
            "forecast": {"outcome": f_out, "totalSeconds": f_total, "downtimeMs": f_dt, "iterations": 3},
            "actual": {"outcome": a_out, "wall_s": a_wall, "downtime_ms": a_dt, "iterations": 3},
            "inputs": {}, "live_eta_at_50": eta, "verified": True}


def test_summary_errors_confusion_and_eta_by_hand():
    runs = [run("converge", 11.0, "converge", 10.0, 100, 130, {"eta_s": 4.0, "actual_left_s": 5.0}),
            run("converge", 9.0, "converge", 10.0, 50, 40),
            run("converge", 20.0, "abort", 25.0),
            run("abort", None, "abort", 30.0)]
    s = fr.summarize({"runs": runs})
    assert s["total_error_runs"] == 3 and s["total_error_median"] == pytest.approx(0.1)
    assert s["total_error_p90"] == pytest.approx(0.2)
    assert s["downtime_runs"] == 2 and sorted(fr.downtime_errors(runs)) == [10, 30]
    assert s["confusion"]["converge"] == {"converge": 2, "abort": 1, "postcopy": 0, "failed": 0}
    assert s["confusion"]["abort"]["abort"] == 1 and s["outcome_right"] == 3
    assert s["eta_runs"] == 1 and s["eta_error_median"] == pytest.approx(0.2)


def test_report_section_replaces_an_earlier_one_and_keeps_the_rest(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Ferry benchmarks\n\n## Other\nkeep\n\n" + fr.HEADING + "\nold\n\n## Later\nkeep too\n")
    result = {"runs": [run("converge", 11.0, "converge", 10.0, 100, 130)], "started_at": "2026-12-02T05:00:00",
              "ended_at": "2026-12-02T05:10:00", "dirty_seconds": 2, "pattern": "random", "machine": {},
              "full_matrix": False}
    fr.write_forecast_report(doc, result)
    text = doc.read_text()
    assert "old" not in text and "keep\n" in text and "## Later\nkeep too" in text
    assert "reduced matrix" in text and "| converge | 1 | 0 | 0 | 0 |" in text
    assert (tmp_path / "benchmarks" / "forecast.json").exists()


def test_report_section_goes_between_markers_and_never_eats_another_benchs_block(tmp_path):
    doc = tmp_path / "benchmarks.md"
    other = "<!-- ferry-bench:evacuate begin -->\n## Evacuate\nkeep\n<!-- ferry-bench:evacuate end -->\n"
    doc.write_text("# Ferry benchmarks\n\n" + fr.HEADING + "\nold\n### sub\nold too\n\n" + other)
    result = {"runs": [run("converge", 11.0, "converge", 10.0, 100, 130)], "started_at": "2026-12-02T05:00:00",
              "ended_at": "2026-12-02T05:10:00", "dirty_seconds": 2, "pattern": "random", "machine": {},
              "full_matrix": False}
    fr.write_forecast_report(doc, result, name="forecast-run3", extra="A note.")
    text = doc.read_text()
    assert "old" not in text and other in text and "A note." in text
    assert text.index(fr.BEGIN) < text.index(fr.END) < text.index("<!-- ferry-bench:evacuate begin -->")
    fr.write_forecast_report(doc, result, name="forecast-run3", extra="Second.")   # again: replaced, once
    text = doc.read_text()
    assert text.count(fr.BEGIN) == 1 and "A note." not in text and "Second." in text and other in text
    assert (tmp_path / "benchmarks" / "forecast-run3.json").exists()


def test_eta_before_and_after_on_the_same_samples():
    r = run("converge", 11.0, "converge", 10.0, 100, 130)
    r["live_eta_at_50"] = {"eta_s": 9.0, "before_eta_s": 5.0, "actual_left_s": 10.0}
    s = fr.summarize({"runs": [r]})
    assert s["eta_error_median"] == pytest.approx(0.1) and s["eta_before_median"] == pytest.approx(0.5)


def test_downtime_in_range_counts_only_runs_with_a_range_and_the_outcome_right():
    inside = run("converge", 11.0, "converge", 10.0, 100, 130)
    inside["forecast"]["downtimeRangeMs"] = {"low": 20, "high": 150}
    outside = run("converge", 11.0, "converge", 10.0, 100, 190)
    outside["forecast"]["downtimeRangeMs"] = {"low": 20, "high": 150}
    older = run("converge", 11.0, "converge", 10.0, 100, 130)          # a raw result from before ranges
    wrong = run("converge", 11.0, "abort", 10.0, 100, None)
    wrong["forecast"]["downtimeRangeMs"] = {"low": 20, "high": 150}
    assert fr.downtime_in_range([inside, outside, older, wrong]) == (1, 2)
    assert fr.summarize({"runs": [inside, outside]})["downtime_in_range"] == (1, 2)
