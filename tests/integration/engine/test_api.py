"""The engine's REST API on a real SQLite database: inventory, policies and plans, and every
kind of bad input answered with a 4xx that names the field (never a 500)."""
from __future__ import annotations

import pytest

from ferry.engine import audit
from ferry.engine.db import Store
from ferry.engine.policies import BUILTIN_POLICIES, LEGACY_ID, VERY_LARGE_VMS_ID

from .conftest import KERNEL

CUSTOM = {
    "name": "Patient",
    "max_migrations": 1,
    "auto_converge": True,
    "init": [{"name": "setDowntime", "params": [200]}],
    "stalling": [{"limit": 2, "action": {"name": "setDowntime", "params": [600]}}],
    "last_items": ["abort"],
}


def ok(response, status=200):
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def field_error(response, status=422):
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert detail["message"]
    return detail["field"], detail["message"]


def lab(api, *, cluster: dict | None = None, caps1=None, vm_overrides=None, h2_status="UP"):
    """Cluster c1 with hosts h1 (source, 10 Gbit) and h2 (25 Gbit), and VM vm1 (4 vCPUs) on h1."""
    ok(api.post("/api/clusters", json={"name": "c1", **(cluster or {})}), 201)
    ok(api.post("/api/hosts", json={"name": "h1", "cluster": "c1", "address": "127.0.0.2", "status": "UP",
                                    "link_speed_mbps": 25000, "capabilities": caps1}), 201)
    ok(api.post("/api/hosts", json={"name": "h2", "cluster": "c1", "address": "127.0.0.3", "status": h2_status,
                                    "link_speed_mbps": 40000}), 201)
    body = {"name": "vm1", "cluster": "c1", "memory_mib": 1024, "vcpus": 4, "kernel": KERNEL, "host": "h1"}
    if vm_overrides:
        body["overrides"] = vm_overrides
    ok(api.post("/api/vms", json=body), 201)


def test_openapi_describes_every_area(api):
    paths = ok(api.get("/openapi.json"))["paths"]
    for path in ("/api/clusters", "/api/clusters/{name}", "/api/hosts", "/api/hosts/{name}", "/api/vms",
                 "/api/vms/{vm}", "/api/policies", "/api/policies/{ref}", "/api/vms/{vm}/plan",
                 "/api/migrations", "/api/events"):
        assert path in paths
    assert ok(api.get("/api/health")) == {"status": "ok", "database": "sqlite"}


# ------------------------------------------------------------------ clusters

def test_cluster_crud(api):
    c = ok(api.post("/api/clusters", json={"name": "c1", "parallel": "CUSTOM:8", "bandwidth": 5000,
                                           "encrypted": True}), 201)
    assert c["parallel"] == {"mode": "CUSTOM", "connections": 8}
    assert c["bandwidth"] == {"mode": "CUSTOM", "custom_mbps": 5000}
    assert c["policy"]["name"] == "Minimal downtime"
    c = ok(api.patch("/api/clusters/c1", json={"policy": "very large vms", "parallel": {"mode": "AUTO"}}))
    assert (c["policy"]["id"], c["parallel"]["mode"], c["encrypted"]) == (VERY_LARGE_VMS_ID, "AUTO", True)
    assert [x["name"] for x in ok(api.get("/api/clusters"))] == ["c1"]
    assert ok(api.get("/api/clusters/c1")) == c
    assert "already exists" in ok(api.post("/api/clusters", json={"name": "c1"}), 409)["detail"]["message"]
    ok(api.delete("/api/clusters/c1"), 204)
    detail = ok(api.get("/api/clusters/c1"), 404)["detail"]
    assert (detail["kind"], detail["name"]) == ("cluster", "c1")


@pytest.mark.parametrize("body, field, words", [
    ({"parallel": 1}, "parallel.connections", "2 to 255"),
    ({"parallel": "1"}, "parallel.connections", "2 to 255"),
    ({"parallel": 300}, "parallel.connections", "2 to 255"),
    ({"parallel": {"mode": "CUSTOM", "connections": 300}}, "parallel.connections", "2 to 255"),
    ({"parallel": {"mode": "CUSTOM"}}, "parallel.connections", "CUSTOM"),
    ({"parallel": "CUSTOM:lots"}, "parallel.connections", "integer"),
    ({"parallel": {"mode": "SOMETIMES"}}, "parallel.mode", "SOMETIMES"),
    ({"bandwidth": "CUSTOM"}, "bandwidth.custom_mbps", "Mbps"),
    ({"bandwidth": {"mode": "CUSTOM"}}, "bandwidth.custom_mbps", "Mbps"),
    ({"bandwidth": {"mode": "AUTO", "custom_mbps": 10}}, "bandwidth.custom_mbps", "only allowed with CUSTOM"),
    ({"policy": "Fastest possible"}, "policy", "unknown policy"),
    ({"policy": "Very large VMs", "parallel_supported": False}, "policy", "does not support parallel migrations"),
    ({"resilience": "PRAY"}, "resilience", "PRAY"),
    ({"encrypted": "perhaps"}, "encrypted", "boolean"),
    ({"policy": None}, "policy", "null"),
    ({"colour": "blue"}, "colour", "unknown field"),
    ({"name": "bad name!"}, "name", "letters"),
])
def test_bad_cluster_input_is_422_naming_the_field(api, body, field, words):
    got_field, message = field_error(api.post("/api/clusters", json={"name": "c1", **body}))
    assert got_field == field
    assert words in message
    assert api.get("/api/clusters").json() == []


def test_turning_off_parallel_support_under_a_zero_copy_policy_is_refused(api):
    ok(api.post("/api/clusters", json={"name": "c1", "policy": "Very large VMs"}), 201)
    f, message = field_error(api.patch("/api/clusters/c1", json={"parallel_supported": False}))
    assert f == "parallel_supported" and "zero-copy" in message
    ok(api.post("/api/clusters", json={"name": "c2", "parallel_supported": False}), 201)
    f, message = field_error(api.patch("/api/clusters/c2", json={"policy": VERY_LARGE_VMS_ID}))
    assert f == "policy" and "does not support parallel migrations" in message


def test_malformed_bodies_are_4xx(api):
    for response in (
        api.post("/api/clusters", content=b"{not json", headers={"content-type": "application/json"}),
        api.post("/api/clusters", json=[1, 2]),
        api.post("/api/clusters", json={}),
        api.patch("/api/clusters/c1", json="text"),
    ):
        assert 400 <= response.status_code < 500, response.text
        assert response.json()["detail"]["field"]


# ------------------------------------------------------------------ hosts and VMs

def test_hosts_capabilities_and_removal(api):
    lab(api)
    h = ok(api.get("/api/hosts/h2"))
    assert (h["agent_url"], h["zerocopy"], h["status"]) == ("https://127.0.0.3:54321/", "UNKNOWN", "UP")
    h = ok(api.patch("/api/hosts/h2", json={"capabilities": {"zerocopy_migrations": False}}))
    assert h["zerocopy"] == "NO" and h["capabilities_at"]
    assert [x["name"] for x in ok(api.get("/api/hosts", params={"cluster": "c1"}))] == ["h1", "h2"]
    assert "vm1" in ok(api.delete("/api/hosts/h1"), 409)["detail"]["message"]
    ok(api.delete("/api/hosts/h2"), 204)
    assert field_error(api.post("/api/hosts", json={"name": "h3", "cluster": "c1", "address": "no way"}))[0] == "address"
    assert field_error(api.post("/api/hosts", json={"name": "h3", "cluster": "nope", "address": "127.0.0.9"}))[0] == "cluster"
    assert field_error(api.patch("/api/hosts/h1", json={"link_speed_mbps": -5}))[0] == "link_speed_mbps"
    assert ok(api.get("/api/hosts", params={"cluster": "nope"}), 422)["detail"]["field"] == "cluster"


def test_vm_overrides_via_patch(api):
    lab(api, vm_overrides={"policy": "Post-copy migration", "encrypted": True, "downtime_ms": 400})
    vm = ok(api.get("/api/vms/vm1"))
    assert vm["overrides"]["policy"]["name"] == "Post-copy migration"
    assert ok(api.get(f"/api/vms/{vm['uuid']}"))["name"] == "vm1"
    vm = ok(api.patch("/api/vms/vm1", json={"overrides": {"encrypted": None, "parallel": "CUSTOM:4"}}))
    o = vm["overrides"]
    assert (o["encrypted"], o["downtime_ms"], o["parallel"]) == (None, 400, {"mode": "CUSTOM", "connections": 4})
    assert o["policy"]["name"] == "Post-copy migration"
    vm = ok(api.patch("/api/vms/vm1", json={"memory_mib": 2048, "status": "PAUSED"}))
    assert (vm["memory_mib"], vm["status"]) == (2048, "PAUSED")
    assert [v["name"] for v in ok(api.get("/api/vms", params={"host": "h1"}))] == ["vm1"]


@pytest.mark.parametrize("body, field", [
    ({"overrides": {"parallel": 1}}, "parallel.connections"),
    ({"overrides": {"parallel": 300}}, "parallel.connections"),
    ({"overrides": {"policy": "nope"}}, "policy"),
    ({"overrides": {"downtime_ms": 0}}, "downtime_ms"),
    ({"overrides": {"speed": 1}}, "overrides.speed"),
    ({"vcpus": 0}, "vcpus"),
    ({"vcpus": "many"}, "vcpus"),
    ({"memory_mib": None}, "memory_mib"),
    ({"host": "nowhere"}, "host"),
    ({"status": "FLYING"}, "status"),
])
def test_bad_vm_changes_are_422_naming_the_field(api, body, field):
    lab(api)
    assert field_error(api.patch("/api/vms/vm1", json=body))[0] == field
    vm = ok(api.get("/api/vms/vm1"))
    assert vm["overrides"]["parallel"] is None and vm["vcpus"] == 4


def test_zero_copy_vm_override_in_a_cluster_without_parallel_support(api):
    lab(api, cluster={"parallel_supported": False})
    f, message = field_error(api.patch("/api/vms/vm1", json={"overrides": {"policy": "Very large VMs"}}))
    assert f == "policy" and "does not support parallel migrations" in message
    ok(api.post("/api/vms", json={"name": "vm2", "cluster": "c1", "memory_mib": 64, "vcpus": 1,
                                  "kernel": KERNEL, "overrides": {"policy": "Very large VMs"}}), 422)


def test_vm_create_errors(api):
    lab(api)
    assert "already exists" in ok(api.post("/api/vms", json={
        "name": "vm1", "cluster": "c1", "memory_mib": 64, "vcpus": 1, "kernel": KERNEL}), 409)["detail"]["message"]
    assert field_error(api.post("/api/vms", json={"name": "vm2", "cluster": "c1", "memory_mib": 64,
                                                  "vcpus": 1}))[0] == "kernel"
    assert field_error(api.post("/api/vms", json={"name": "vm2", "cluster": "c1", "memory_mib": 64,
                                                  "vcpus": 1, "kernel": "relative/path"}))[0] == "kernel"
    ok(api.get("/api/vms/ghost"), 404)
    ok(api.delete("/api/vms/vm1"), 204)


# ------------------------------------------------------------------ policies

def test_policies_list_show_and_custom_lifecycle(api):
    listed = ok(api.get("/api/policies"))
    assert [p["id"] for p in listed] == [p.id for p in BUILTIN_POLICIES]
    assert all(p["builtin"] for p in listed)
    created = ok(api.post("/api/policies", json=CUSTOM), 201)
    assert created["builtin"] is False and created["last_items"] == [{"name": "abort", "params": []}]
    shown = ok(api.get("/api/policies/patient"))
    assert shown == created
    # What GET returns can be sent back with a change.
    replaced = ok(api.put(f"/api/policies/{created['id']}", json={**shown, "max_migrations": 2}))
    assert replaced["max_migrations"] == 2 and replaced["id"] == created["id"]
    ok(api.post("/api/clusters", json={"name": "c1", "policy": "Patient"}), 201)
    assert "in use" in ok(api.delete("/api/policies/Patient"), 409)["detail"]["message"]
    ok(api.patch("/api/clusters/c1", json={"policy": "Legacy"}))
    ok(api.delete("/api/policies/Patient"), 204)
    ok(api.get("/api/policies/Patient"), 404)


def test_built_in_policies_are_read_only(api):
    for response in (api.put(f"/api/policies/{LEGACY_ID}", json=CUSTOM),
                     api.delete("/api/policies/Very large VMs")):
        assert response.status_code == 409
        assert "built-in" in response.json()["detail"]["message"]
    assert "already exists" in ok(api.post("/api/policies", json={**CUSTOM, "name": "LEGACY"}), 409)["detail"]["message"]


@pytest.mark.parametrize("change, field", [
    ({"max_migrations": 0}, "max_migrations"),
    ({"init": [{"name": "explode"}]}, "init[0].name"),
    ({"init": [{"name": "setDowntime", "params": []}]}, "init[0].params"),
    ({"stalling": [{"limit": 2}]}, "stalling[0].action"),
    ({"stalling": [{"limit": "soon", "action": "abort"}]}, "stalling[0].limit"),
    ({"zerocopy": True, "compression": True}, "compression"),
    ({"builtin": True}, "builtin"),
    ({"name": ""}, "name"),
    ({"maxBandwidth": 3}, "maxBandwidth"),
])
def test_bad_custom_policy_is_422_naming_the_field(api, change, field):
    assert field_error(api.post("/api/policies", json={**CUSTOM, **change}))[0] == field


# ------------------------------------------------------------------ plans

def test_plan_zero_copy_forces_parallel_and_explains_it(api):
    lab(api, cluster={"policy": "Very large VMs"}, caps1={"zerocopy_migrations": True})
    plan = ok(api.post("/api/vms/vm1/plan", json={"to": "h2"}))
    assert (plan["source"], plan["destination"]) == ("h1", "h2")
    params = plan["params"]
    assert params["zerocopy"] is True and params["parallel"] >= 2
    assert params["dst"] == "127.0.0.3"
    assert "VIR_MIGRATE_ZEROCOPY" in plan["libvirt_flags"] and "VIR_MIGRATE_PARALLEL" in plan["libvirt_flags"]
    parallel = [e for e in plan["explanation"] if e["field"] == "parallel"]
    assert parallel and parallel[0]["from"] == "DISABLED" and "zero-copy" in parallel[0]["reason"]


def test_plan_with_encryption_turns_zero_copy_off(api):
    lab(api, cluster={"policy": "Very large VMs"}, vm_overrides={"encrypted": True})
    plan = ok(api.post("/api/vms/vm1/plan", json={}))
    assert plan["destination"] == "h2"  # the engine's pick: the only other host that is up
    assert not plan["params"].get("zerocopy")
    assert any(e["field"] == "zerocopy" and "encryption" in e["reason"] for e in plan["explanation"])


def test_plan_does_not_send_zero_copy_to_a_source_that_cannot(api):
    lab(api, cluster={"policy": "Very large VMs"}, caps1={"zerocopy_migrations": False})
    plan = ok(api.post("/api/vms/vm1/plan", json={"to": "h2"}))
    assert "zerocopy" not in plan["params"] or plan["params"]["zerocopy"] is False
    assert any(e["field"] == "zerocopy" for e in plan["explanation"])


def test_plan_requested_policy_and_its_errors(api):
    lab(api, cluster={"parallel_supported": False})
    plan = ok(api.post("/api/vms/vm1/plan", json={"to": "h2", "policy": "Suspend workload if needed"}))
    assert plan["policy"]["name"] == "Suspend workload if needed"
    f, message = field_error(api.post("/api/vms/vm1/plan", json={"to": "h2", "policy": "Very large VMs"}))
    assert f == "policy" and "parallel migrations are not supported" in message
    assert field_error(api.post("/api/vms/vm1/plan", json={"policy": "Nope"}))[0] == "policy"
    assert field_error(api.post("/api/vms/vm1/plan", json={"to": "h9"}))[0] == "to"
    assert field_error(api.post("/api/vms/vm1/plan", json={"to": "h1"}))[0] == "to"
    assert field_error(api.post("/api/vms/vm1/plan", json={"to": 5}))[0] == "to"
    assert field_error(api.post("/api/vms/vm1/plan", json={"from": "h1"}))[0] == "from"
    ok(api.post("/api/vms/ghost/plan", json={}), 404)


def test_plan_without_a_destination_or_a_running_vm_is_409(api):
    lab(api, h2_status="MAINTENANCE")
    message = ok(api.post("/api/vms/vm1/plan"), 409)["detail"]["message"]
    assert "h2: host is MAINTENANCE" in message   # the destination choice names the status
    ok(api.patch("/api/vms/vm1", json={"host": None}))
    assert "not running" in ok(api.post("/api/vms/vm1/plan", json={"to": "h2"}), 409)["detail"]["message"]


# ------------------------------------------------------------------ history

def test_migrations_and_events_are_listed(api):
    lab(api)
    with api.app.state.db.session() as session:
        store = Store(session)
        mig = store.migrations.create("vm1", source="h1", destination="h2", state="RUNNING")
        store.events.record_audit(audit.VM_MIGRATION_START, vm="vm1", host="h1", migration_id=mig.id,
                           source="h1", destination="h2", user="admin")
    migrations = ok(api.get("/api/migrations", params={"active": True}))
    assert [(m["id"], m["vm"], m["state"]) for m in migrations] == [(mig.id, "vm1", "RUNNING")]
    assert ok(api.get(f"/api/migrations/{mig.id}"))["destination"] == "h2"
    events = ok(api.get("/api/events", params={"vm": "vm1"}))
    assert [(e["code"], e["migration_id"]) for e in events] == [(62, mig.id)]
    assert ok(api.get("/api/events", params={"after": events[0]["id"]})) == []
    ok(api.get("/api/migrations/nope"), 404)
    assert field_error(api.get("/api/events", params={"limit": 0}))[0] == "limit"
