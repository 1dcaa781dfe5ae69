"""A tiny `ferry bench migrate` on the real lab: one small guest (512 MiB), one mode, one repeat, baselines
included. It checks the result's structure, that every measurement is there and positive and
that memory was verified -- not how fast anything was (timings are the full benchmark's job)."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ferry.bench.figures import COPIED, ENGAGED, OFF, UNSEEN
from ferry.cli.main import cli

pytestmark = pytest.mark.lab


def test_bench_migrate_smoke(lab, tmp_path):
    assert len(lab.hosts()) >= 2, "the session lab should have brought up 3 hosts"
    report = tmp_path / "benchmarks.md"
    result = CliRunner().invoke(cli, ["bench", "migrate", "--sizes", "512", "--modes", "zerocopy2", "--dirty", "8",
                                      "--repeat", "1", "--iperf-seconds", "1", "--json", "--report", str(report),
                                      "--lab-id", str(lab.lab_id)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["kind"] == "migrate" and out["ferry_path"] == "ferry-engine"   # the default path
    assert out["machine"]["cores"] >= 1 and out["machine"]["qemu"] and out["machine"]["accelerator"]
    kinds = [(r["kind"], r.get("driver")) for r in out["records"]]
    assert kinds == [("iperf", None), ("migrate", "ferry"), ("migrate", "virsh")]
    iperf, *migrations = out["records"]
    assert iperf["streams"] == 2 and iperf["raw"]["received_mib_s"] > 0
    for rec in migrations:
        assert rec["ok"], rec["error"]
        assert rec["verified"], rec["verify_reasons"]
        assert rec["flags_as_expected"] and "VIR_MIGRATE_ZEROCOPY" in rec["flags"]
        assert rec["source"] != rec["destination"]
        assert rec["wall_s"] > 0
        f = rec["figures"]
        assert f["total_ms"] > 0 and f["memory_bytes"] > 0 and f["throughput_mib_s"] > 0 and f["iterations"] >= 1
        assert f["downtime_ms"] is not None and f["downtime_ms"] >= 0
        assert rec["cpu"]["source"]["total"] > 0 and rec["cpu"]["destination"]["total"] > 0
        assert rec["cpu"]["destination"]["complete"]
        assert rec["zerocopy"]["state"] in (ENGAGED, COPIED, UNSEEN, OFF)
    # the guest went there with Ferry and came back with virsh
    assert migrations[0]["destination"] == migrations[1]["source"]
    text = report.read_text()
    assert "## Migrations: Ferry vs bare virsh vs raw TCP" in text and "control-plane overhead" in text
    assert (tmp_path / "benchmarks" / "times.png").stat().st_size > 0
    assert not [v for v in (h["vms"] for h in lab.status()["hosts"]) for d in v if d["name"].startswith("bench-")]
