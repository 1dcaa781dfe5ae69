"""`ferry bench evacuate`'s pure parts: the summary and its section of docs/benchmarks.md."""
from __future__ import annotations

from ferry.bench.evacuate_bench import MARK_BEGIN, MARK_END, summary, write_section


def result():
    return summary([20.0, 22.0, 21.0], [10.0, 11.0, 12.0], vms=4, memory_mib=256, fill_mib=64, dirty_mib_s=0,
                   repeat=3)


def test_summary_has_medians_and_the_speedup():
    r = result()
    assert r["sequential_median_s"] == 21.0 and r["drain_median_s"] == 11.0 and r["speedup"] == 1.91


def test_the_section_is_added_once_and_replaced_on_the_next_run(tmp_path):
    report = tmp_path / "benchmarks.md"
    report.write_text("# Benchmarks\n\nother section\n")
    write_section(report, result())
    write_section(report, summary([30.0], [10.0], vms=2, memory_mib=256, fill_mib=64, dirty_mib_s=0, repeat=1))
    text = report.read_text()
    assert text.startswith("# Benchmarks\n\nother section\n")
    assert text.count(MARK_BEGIN) == 1 and text.count(MARK_END) == 1
    assert "| drain (`ferry host maintenance`) | 10.0 |" in text and "3.0x" in text
