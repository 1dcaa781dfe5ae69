"""GET /metrics over the real app and store (agents faked as in test_operations_api): bearer
auth as Prometheus sends it, numbers read from the database, the request-latency histogram."""
from __future__ import annotations

import time
import warnings

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ferry.engine.api import create_app
from ferry.engine.services.tokens import issue_token
from tests.unit.engine.test_operations_api import answer_host_verbs, api  # noqa: F401 - the fixture
from tests.unit.engine.test_orchestrator import RUNNING, succeeded


def scrape(client, headers=None) -> dict[str, list]:
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {f.name: f.samples for f in text_string_to_metric_families(r.text)}


def sample(samples, name, **labels):
    found = [s for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    return found[0].value if found else None


def start(client, world, script) -> dict:
    answer_host_verbs(world, {})
    for h in ("h1", "h2"):
        client.post(f"/api/hosts/{h}/refresh")
    client.post("/api/vms/vm1/start", json={"host": "h1"})
    world.agent("h1").script = script
    return client.post("/api/vms/vm1/migrate", json={}).json()


def wait_state(client, mid, state) -> dict:
    deadline = time.monotonic() + 10
    while (m := client.get(f"/api/migrations/{mid}").json())["state"] != state:
        assert time.monotonic() < deadline, m
        time.sleep(0.02)
    return m


def test_metrics_need_a_bearer_token(api):
    client, _ = api
    r = client.get("/metrics", headers={"Authorization": ""})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert client.get("/metrics", headers={"Authorization": "Bearer ferry_" + "x" * 43}).status_code == 401


def test_a_readonly_token_may_scrape(api, tmp_path):
    client, _ = api
    readonly = issue_token(f"sqlite:///{tmp_path / 'engine.db'}", "readonly", "prom")[0]
    families = scrape(client, {"Authorization": f"Bearer {readonly}"})
    assert sample(families["ferry_hosts"], "ferry_hosts", status="UNKNOWN") == 2


def test_a_running_migration_then_its_result_from_the_database(api):
    client, world = api
    m = start(client, world, [RUNNING])
    wait_state(client, m["id"], "RUNNING")
    deadline = time.monotonic() + 10
    while not (client.get(f"/api/migrations/{m['id']}").json().get("figures") or {}).get("data_total"):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    f = scrape(client)
    labels = {"vmi": "vm1", "migration": m["id"], "source": "h1", "destination": "h2", "policy": "Very large VMs"}
    assert sample(f["ferry_vmi_migration_data_total_bytes"], "ferry_vmi_migration_data_total_bytes", **labels) == 100
    assert sample(f["ferry_vmi_migration_data_remaining_bytes"], "ferry_vmi_migration_data_remaining_bytes",
                  **labels) == 50
    assert sample(f["ferry_vmi_migration_memory_transfer_rate_bytes"],
                  "ferry_vmi_migration_memory_transfer_rate_bytes", **labels) == 10
    assert sample(f["ferry_vmi_migration_start_time_seconds"], "ferry_vmi_migration_start_time_seconds",
                  **labels) > 1.7e9
    assert sample(f["ferry_host_migrations_in_flight"], "ferry_host_migrations_in_flight", host="h1",
                  direction="out") == 1
    assert sample(f["ferry_host_zerocopy_support"], "ferry_host_zerocopy_support", host="h1", support="YES") == 1
    assert sample(f["ferry_vmi_migrations"], "ferry_vmi_migrations_total", result="succeeded") is None

    world.agent("h1").script = [succeeded()]
    wait_state(client, m["id"], "SUCCEEDED")
    f = scrape(client)
    assert f["ferry_vmi_migration_data_total_bytes"] == []
    assert sample(f["ferry_vmi_migrations"], "ferry_vmi_migrations_total", result="succeeded",
                  policy="Very large VMs") == 1
    assert sample(f["ferry_vmi_migration_duration_seconds"], "ferry_vmi_migration_duration_seconds_count",
                  policy="Very large VMs") == 1
    assert sample(f["ferry_vmi_migration_duration_seconds"], "ferry_vmi_migration_duration_seconds_sum",
                  policy="Very large VMs") == 1.5
    assert sample(f["ferry_vmi_migration_downtime_seconds"], "ferry_vmi_migration_downtime_seconds_bucket",
                  policy="Very large VMs", le="0.05") == 1
    assert sample(f["ferry_metrics_scrape_duration_seconds"], "ferry_metrics_scrape_duration_seconds") > 0


def test_two_engines_on_one_database_export_the_same_counts(api, tmp_path):
    client, world = api
    m = start(client, world, [RUNNING, succeeded()])
    wait_state(client, m["id"], "SUCCEEDED")
    url = f"sqlite:///{tmp_path / 'engine.db'}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    with TestClient(create_app(url)) as other:
        other.headers["Authorization"] = client.headers["Authorization"]
        mine, theirs = scrape(client), scrape(other)
    for name in ("ferry_vmi_migrations", "ferry_vmi_migration_duration_seconds", "ferry_hosts"):
        assert mine[name] == theirs[name], name


def test_request_latency_is_by_route_template_not_raw_path(api):
    client, _ = api
    client.get("/api/hosts/h1")
    client.get("/api/hosts/h2")
    client.get("/api/no/such/route")
    f = scrape(client)["ferry_engine_request_duration_seconds"]
    routes = {s.labels["route"] for s in f if s.name.endswith("_count")}
    assert "/api/hosts/{name}" in routes and "/api/hosts/h1" not in routes and "unmatched" in routes
    assert sample(f, "ferry_engine_request_duration_seconds_count", route="/api/hosts/{name}", method="GET",
                  status="200") == 2


@pytest.mark.parametrize("allowed, name, status", [("prometheus", "prometheus", 200), ("prometheus, other", "x", 403)])
def test_metrics_tokens_setting_limits_who_scrapes(tmp_path, monkeypatch, allowed, name, status):
    monkeypatch.setenv("FERRY_METRICS_TOKENS", allowed)
    url = f"sqlite:///{tmp_path / 'engine.db'}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    with TestClient(create_app(url)) as client:
        token = issue_token(url, "readonly", name)[0]
        r = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == status, r.text
        if status == 403:
            assert r.json()["detail"]["field"] == "Authorization" and "FERRY_METRICS_TOKENS" in r.json()["detail"]["message"]


def test_missed_zero_copy_syncs_the_agent_reports_are_a_gauge_then_a_counter(api):
    client, world = api
    m = start(client, world, [{**RUNNING, "dirtySyncMissedZeroCopy": 4}])
    deadline = time.monotonic() + 10
    while "dirty_sync_missed_zero_copy" not in (client.get(f"/api/migrations/{m['id']}").json().get("figures") or {}):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    f = scrape(client)
    name = "ferry_vmi_migration_dirty_sync_missed_zero_copy"
    assert sample(f[name], name, migration=m["id"], vmi="vm1") == 4
    world.agent("h1").script = [succeeded(dirtySyncMissedZeroCopy=9)]
    final = wait_state(client, m["id"], "SUCCEEDED")
    assert final["result"]["dirty_sync_missed_zero_copy"] == 9
    f = scrape(client)
    assert f[name] == []
    total = "ferry_vmi_migrations_dirty_sync_missed_zero_copy"
    assert sample(f[total], total + "_total", policy="Very large VMs") == 9
