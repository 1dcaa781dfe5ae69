"""The scale section replaces only itself in docs/benchmarks.md and shows every run's figures."""
from ferry.bench import scale_report


def _run(label, at, period):
    return {"label": label, "at": at, "monitor_interval_s": 5.0, "window_s": 20.0, "planner": "batch",
            "sizes": [{"hosts": 250, "vms": 5000, "import_s": 1.7,
                       "refresh": {"refreshes_per_s": 50.0, "mean_period_s": period, "worst_gap_s": 7.0,
                                   "hosts_not_refreshed": 0, "engine_cpu_cores": 0.4},
                       "api": {"p50_ms": 10.0, "p95_ms": 40.0, "errors": 0},
                       "planning": {"seconds": 0.5}, "planning_per_vm_sample": {"seconds": 1.0,
                                                                                "estimate_for_drain_s": 20.0}}]}


def test_section_is_added_then_replaced_keeping_the_rest(tmp_path):
    report = tmp_path / "benchmarks.md"
    report.write_text("# Ferry benchmarks\n\n## Migrations\nkept text\n")
    scale_report.write_scale_report(report, _run("before", "2026-01-01 00:00 UTC", 400.0))
    scale_report.write_scale_report(report, _run("after", "2026-01-01 01:00 UTC", 5.0))
    text = report.read_text()
    assert text.count(scale_report.BEGIN) == 1 and text.count(scale_report.END) == 1
    assert "kept text" in text
    assert "### Run `before`" in text and "### Run `after`" in text
    assert text.index("### Run `before`") < text.index("### Run `after`")
    assert "| 250 | 5000 | 50.00 | 400.0 |" in text
    assert (tmp_path / "benchmarks" / "scale.png").stat().st_size > 0


def test_failed_planning_says_why():
    run = _run("x", "t", 9.0)
    run["sizes"][0]["planning"] = {"error": "no host to migrate VM 'a' to"}
    assert "failed: no host to migrate" in "\n".join(scale_report.run_table(run))


def _failover(at):
    return {"kind": "scale-failover", "at": at, "engines": 3, "hosts": 24, "vms": 192, "drained_hosts": 2,
            "vms_moved": 16, "victim": "engine-a", "victim_items": 3, "victim_migrations": 2, "takeover_s": 10.4,
            "followed_s": 10.6, "drain_states": {"h1": "DONE", "h2": "DONE"}, "lost": 0, "duplicated": 0,
            "load_before": [1.0, 2.0, 3.0]}


def test_the_failover_phase_is_a_table_in_the_scale_block_and_survives_a_scale_run(tmp_path):
    """`ferry bench scale-failover` and `ferry bench scale` each rewrite the one scale block:
    neither drops the other's figures (the failover runs are not read as scale runs)."""
    from ferry.bench import scale_failover

    report = tmp_path / "benchmarks.md"
    report.write_text("# Ferry benchmarks\n")
    scale_report.write_scale_report(report, _run("after", "2026-01-01 01:00 UTC", 5.0))
    scale_failover.store_run(report, _failover("2026-01-02 00:00 UTC"))
    scale_report.write_scale_report(report, _run("later", "2026-01-03 01:00 UTC", 4.0))
    text = report.read_text()
    assert text.count(scale_report.BEGIN) == 1
    block = text[text.index(scale_report.BEGIN):text.index(scale_report.END)]
    assert "### Run `after`" in block and "### Run `later`" in block and "### Failover" in block
    assert "| 2026-01-02 00:00 UTC | 3 | 24 / 192 | 2 (16) | 2 migrations, 1 drains | 10.4 | 10.6 | DONE | 0 | 0 | " \
           "1.0/2.0/3.0 |" in block
