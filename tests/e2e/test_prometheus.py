"""A real Prometheus scrapes the engine during a real lab migration (issue 16).

Debian's `prometheus` (scripts/install-system.sh) runs on loopback with a generated config:
scrape interval 1 s, a readonly bearer token from a credentials file, its own data directory
under the test's temp dir. The test then asks Prometheus's HTTP API (not the engine) for the
migration's series: data_processed going up while it ran, the result counter incremented, and
QEMU's dirty-sync-missed-zero-copy, which the agent read over QMP (the policy sends zero-copy).
Prometheus is stopped by its pid at the end.
"""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from ferry.engine.services.tokens import issue_token
from tests.e2e.test_migrations_e2e import running_with_data

pytestmark = [pytest.mark.lab]

CAP_MBPS = 160   # cluster bandwidth 160 Mbps = 20 MiB/s: 256 MiB take >10 s, i.e. >10 scrapes;
# the guest dirties 6 MiB/s, well under the cap, so the migration converges


def readonly_token(e2e, name: str) -> str:
    """A readonly token of the e2e engine (its database sits beside its log, see tests/fixtures/engine.py)."""
    return issue_token(f"sqlite:///{e2e.log.parent / 'engine.db'}", "readonly", name)[0]


class Prometheus:
    def __init__(self, url: str, proc: subprocess.Popen, log: Path):
        self.url, self.proc, self.log = url, proc, log

    def query(self, promql: str, at: float | None = None) -> list[dict]:
        params = {"query": promql} | ({"time": at} if at is not None else {})
        r = httpx.get(f"{self.url}/api/v1/query", params=params, timeout=10)
        r.raise_for_status()
        return r.json()["data"]["result"]

    def query_range(self, promql: str, start: float, end: float, step: float = 1.0) -> list[dict]:
        r = httpx.get(f"{self.url}/api/v1/query_range", params={"query": promql, "start": start, "end": end,
                                                              "step": step}, timeout=10)
        r.raise_for_status()
        return r.json()["data"]["result"]

    def scalar(self, promql: str) -> float | None:
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, promql: str, ok, timeout: float = 30.0) -> float | None:
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.scalar(promql)
            if ok(value):
                return value
            time.sleep(0.5)
        raise AssertionError(f"{promql} = {value} after {timeout:.0f} s; prometheus log:\n{self.log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def prometheus(e2e, tmp_path_factory):
    from ferry.engine.process import free_port
    from ferry.lab import procs

    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed: run scripts/install-system.sh (it installs Debian's prometheus)")
    tmp = tmp_path_factory.mktemp("prometheus")
    token_file = tmp / "token"
    token_file.write_text(readonly_token(e2e, "prometheus"))
    token_file.chmod(0o600)
    target = e2e.url.removeprefix("http://")
    (tmp / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: ferry\n    metrics_path: /metrics\n"
        f"    authorization:\n      type: Bearer\n      credentials_file: {token_file}\n"
        f"    static_configs:\n      - targets: ['{target}']\n")
    port = free_port()
    log = tmp / "prometheus.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen([binary, f"--config.file={tmp / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={tmp / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
                                 "--storage.tsdb.retention.time=1h", "--log.level=warn"],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    prom = Prometheus(f"http://127.0.0.1:{port}", proc, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"prometheus exited ({proc.returncode}):\n{log.read_text()[-2000:]}"
            try:
                if httpx.get(f"{prom.url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"prometheus not ready after 60 s:\n{log.read_text()[-2000:]}"
            time.sleep(0.3)
        prom.wait_for('up{job="ferry"}', lambda v: v == 1)
        yield prom
    finally:
        procs.stop(proc.pid, timeout=10)
        proc.wait(timeout=5)


def test_prometheus_scrapes_a_live_migration_and_its_result(e2e, e2e_guest, prometheus):
    succeeded = 'sum(ferry_vmi_migrations_total{result="succeeded"}) or vector(0)'
    missed_total = 'sum(ferry_vmi_migrations_dirty_sync_missed_zero_copy_total{policy="Very large VMs"}) or vector(0)'
    before = prometheus.scalar(succeeded)
    missed_before = prometheus.scalar(missed_total)
    vm = e2e_guest(1, fill_mib=256, dirty_mib_s=6)
    with e2e.cluster_settings(bandwidth={"mode": "CUSTOM", "custom_mbps": CAP_MBPS}):
        m = e2e.migrate(vm["name"], to=e2e.hosts[1].name)
        assert m["plan"]["params"]["maxBandwidth"] == CAP_MBPS // 8
        t_start = time.time()
        e2e.wait(m, until=running_with_data)
        # The count reaches the engine only from the agent's status key dirtySyncMissedZeroCopy,
        # which the agent sets from QEMU's query-migrate: libvirt's job stats have no such figure.
        live = e2e.wait(m, until=lambda r: "dirty_sync_missed_zero_copy" in (r.get("figures") or {}))
        assert live["state"] == "RUNNING", live
        reported = live["figures"]["dirty_sync_missed_zero_copy"]
        qemu_now = e2e.qmp(e2e.hosts[0].name, vm["name"], "query-migrate")["ram"]["dirty-sync-missed-zero-copy"]
        final = e2e.wait(m, timeout=300)
        t_end = time.time()
    assert final["state"] == "SUCCEEDED", final
    assert "VIR_MIGRATE_ZEROCOPY" in final["result"]["flags"]
    # QEMU's counter only grows during a migration: what the agent read is at most what QEMU says later.
    assert isinstance(reported, int) and 0 <= reported <= qemu_now, (reported, qemu_now)
    missed = final["result"]["dirty_sync_missed_zero_copy"]
    assert isinstance(missed, int) and missed >= reported

    series = f'ferry_vmi_migration_data_processed_bytes{{migration="{m["id"]}"}}'
    result = prometheus.query_range(series, t_start - 2, t_end + 2)
    assert len(result) == 1, result
    labels = result[0]["metric"]
    assert labels["vmi"] == vm["name"] and labels["source"] == e2e.hosts[0].name
    assert labels["destination"] == e2e.hosts[1].name and labels["policy"] == "Very large VMs"
    values = [float(v) for _, v in result[0]["values"]]
    assert len(set(values)) >= 3, f"data_processed barely moved: {values}"
    assert values == sorted(values) and values[-1] > values[0] + 64 * 2**20, values
    total = prometheus.query_range(f'ferry_vmi_migration_data_total_bytes{{migration="{m["id"]}"}}',
                                   t_start - 2, t_end + 2)
    assert total and float(total[0]["values"][-1][1]) >= 256 * 2**20

    after = prometheus.wait_for(succeeded, lambda v: v is not None and v >= before + 1)
    assert after == before + 1
    gauge = prometheus.query_range(f'ferry_vmi_migration_dirty_sync_missed_zero_copy{{migration="{m["id"]}"}}',
                                   t_start - 2, t_end + 2)
    assert len(gauge) == 1 and gauge[0]["values"], gauge
    gauge_values = [float(v) for _, v in gauge[0]["values"]]
    assert gauge_values == sorted(gauge_values) and 0 <= gauge_values[-1] <= missed, (gauge_values, missed)
    prometheus.wait_for('count(ferry_vmi_migrations_dirty_sync_missed_zero_copy_total{policy="Very large VMs"})',
                        lambda v: v == 1)
    assert prometheus.wait_for(missed_total, lambda v: v is not None and v >= missed_before + missed) \
        == missed_before + missed
    count = prometheus.wait_for('sum(ferry_vmi_migration_duration_seconds_count{policy="Very large VMs"})',
                                lambda v: v is not None and v >= 1)
    assert count >= 1
    # Once it ended, the in-flight series is gone from the engine's answer (stale in Prometheus).
    prometheus.wait_for(f'count({series}) or vector(0)', lambda v: v == 0)
    # The engine's own latency, by route template: the test's polls of this migration are in it.
    polls = prometheus.scalar('sum(ferry_engine_request_duration_seconds_count{route="/api/migrations/{migration_id}",'
                              'method="GET"})')
    assert polls is not None and polls >= 1
    scrape = [prometheus.scalar(f'{q}_over_time(scrape_duration_seconds{{job="ferry"}}[5m])') for q in ("avg", "max")]
    reading = [prometheus.scalar(f'{q}_over_time(ferry_metrics_scrape_duration_seconds[5m])') for q in ("avg", "max")]
    print(f"\nscrapes: {len(values)} samples of data_processed over {t_end - t_start:.1f} s; scrape duration "
          f"avg {scrape[0] * 1000:.1f} / max {scrape[1] * 1000:.1f} ms (database read avg {reading[0] * 1000:.1f} / "
          f"max {reading[1] * 1000:.1f} ms); dirty-sync-missed-zero-copy: agent read {reported} mid-way "
          f"(QEMU {qemu_now} just after), {missed} at the end, gauge samples {len(gauge_values)}")
