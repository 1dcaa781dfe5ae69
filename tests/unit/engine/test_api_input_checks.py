"""Each input issue 12 found answered 500 or accepted, through the REST API with an admin token:
now a 4xx with the API's error shape naming the field, and nothing stored."""
from __future__ import annotations

import json
import warnings

import pytest

from ferry.common.errors import InvalidInput
from ferry.engine.api import create_app
from ferry.engine.services.tokens import issue_token

KERNEL = "/var/lib/ferry/images/vmlinuz"
VM = {"name": "vm2", "cluster": "c1", "memory_mib": 1024, "vcpus": 1, "kernel": KERNEL}
HOST = {"name": "h2", "cluster": "c1", "address": "127.0.9.2"}


@pytest.fixture
def api(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    url = f"sqlite:///{tmp_path / 'engine.db'}"
    app = create_app(url)
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {issue_token(url, 'admin', 'tests')[0]}"
        assert client.post("/api/clusters", json={"name": "c1"}).status_code == 201
        assert client.post("/api/hosts", json={"name": "h1", "cluster": "c1", "address": "127.0.9.1"}).status_code == 201
        assert client.post("/api/vms", json={**VM, "name": "vm1", "cmdline": "quiet"}).status_code == 201
        yield client


def send(client, method: str, path: str, body=None, **kw):
    if body is not None:
        kw["content"] = body if isinstance(body, bytes) else json.dumps(body).encode()  # \\ud800 as JSON has it
        kw["headers"] = {"Content-Type": "application/json"}
    return client.request(method, path, **kw)


def field_of(response, status: int = 422) -> str:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert set(detail) >= {"field", "reason", "message"}, detail
    return detail["field"]


def snapshot(client) -> str:
    """Everything stored, as the API shows it (each list answers 200)."""
    lists = []
    for path in ("/api/clusters", "/api/hosts", "/api/vms", "/api/policies"):
        r = client.get(path)
        assert r.status_code == 200, (path, r.text)
        lists.append(r.json())
    return json.dumps(lists, sort_keys=True)


@pytest.mark.parametrize("method, path, body, field", [
    # integers >= 2^63 (SQLite's OverflowError was a 500), and values past the engine's bounds
    ("POST", "/api/vms", {**VM, "memory_mib": 2 ** 63}, "memory_mib"),
    ("POST", "/api/vms", {**VM, "memory_mib": 2 ** 31}, "memory_mib"),
    ("POST", "/api/vms", {**VM, "vcpus": 0}, "vcpus"),
    ("POST", "/api/vms", {**VM, "vcpus": 513}, "vcpus"),
    ("POST", "/api/vms", {**VM, "memtune_hard_limit_kib": 10 ** 30}, "memtune_hard_limit_kib"),
    ("POST", "/api/vms", {**VM, "workload": {"fill_mib": 2 ** 63}}, "workload.fill_mib"),
    ("POST", "/api/vms", {**VM, "workload": {"fill_mib": 64, "dirty_mib_s": -32}}, "workload.dirty_mib_s"),
    ("POST", "/api/vms", {**VM, "workload": {"fill_mib": 4096}}, "workload.fill_mib"),
    ("PATCH", "/api/clusters/c1", {"bandwidth": {"mode": "CUSTOM", "custom_mbps": 2 ** 63}}, "bandwidth.custom_mbps"),
    ("PATCH", "/api/clusters/c1", {"bandwidth": 2 ** 63}, "bandwidth.custom_mbps"),
    # files root would read, write or run on the hosts
    ("POST", "/api/vms", {**VM, "emulator": "/tmp/evil.sh"}, "emulator"),
    ("POST", "/api/vms", {**VM, "kernel": "/etc/shadow"}, "kernel"),
    ("POST", "/api/vms", {**VM, "initrd": "/etc/shadow"}, "initrd"),
    ("POST", "/api/vms", {**VM, "console_log": "/etc/passwd"}, "console_log"),
    ("PATCH", "/api/vms/vm1", {"emulator": "/bin/sh"}, "emulator"),
    ("PATCH", "/api/vms/vm1", {"kernel": "/var/lib/ferry/images/../../../etc/shadow"}, "kernel"),
    # text that cannot be stored (UnicodeEncodeError was a 500), and names that are paths
    ("POST", "/api/vms", {**VM, "cmdline": "quiet \ud800"}, "cmdline"),
    ("PATCH", "/api/clusters/c1", {"description": "a\x00b"}, "description"),
    ("POST", "/api/policies", {"name": "../../../etc/passwd"}, "name"),
    ("POST", "/api/policies", {"name": "a/b"}, "name"),
    ("POST", "/api/policies", {"name": "a\x00b"}, "name"),
    ("POST", "/api/clusters", {"name": "x" * 10_000}, "name"),
    # addresses and agent URLs
    ("POST", "/api/hosts", {**HOST, "address": "999.999.1.1"}, "address"),
    ("POST", "/api/hosts", {**HOST, "agent_url": "http://[::1"}, "agent_url"),
    ("POST", "/api/hosts", {**HOST, "agent_url": "http://169.254.169.254/latest/meta-data/"}, "agent_url"),
    ("PATCH", "/api/hosts/h1", {"agent_url": "https://[fe80::a9fe:a9fe]:54321/"}, "agent_url"),
    ("PATCH", "/api/hosts/h1", {"migration_address": "999.999.1.1"}, "migration_address"),
    ("PATCH", "/api/hosts/h1", {"capabilities": {"memFree": 2 ** 64}}, "capabilities.memFree"),
])
def test_bad_input_is_a_422_naming_the_field_and_nothing_is_stored(api, method, path, body, field):
    before = snapshot(api)
    assert field_of(send(api, method, path, body)) == field
    assert snapshot(api) == before


def test_a_surrogate_in_a_patched_cmdline_is_refused_and_the_vm_list_still_answers(api):
    assert field_of(send(api, "PATCH", "/api/vms/vm1", {"cmdline": "quiet \ud800"})) == "cmdline"
    vms = api.get("/api/vms")
    assert vms.status_code == 200 and vms.json()[0]["spec"]["cmdline"] == "quiet"


def test_event_cursor_past_64_bits_is_a_422_naming_after(api):
    assert field_of(api.get("/api/events", params={"after": str(2 ** 63)})) == "after"
    assert api.get("/api/events", params={"after": str(2 ** 63 - 1)}).status_code == 200


def test_deeply_nested_json_gets_the_error_shape(api):
    body = b'{"name":' * 50_000 + b'"x"' + b"}" * 50_000
    assert field_of(send(api, "POST", "/api/clusters", body)) == "body"
    assert field_of(send(api, "POST", "/api/policies", b"[" * 3000 + b"]" * 3000)) == "body"


def test_an_oversized_body_is_a_413_with_the_error_shape(api):
    assert field_of(send(api, "POST", "/api/clusters", b" " * (1024 * 1024 + 10)), 413) == "body"


def test_starlettes_own_refusals_have_the_error_shape(api):
    r = api.get("/api/nowhere")
    assert r.status_code == 404 and set(r.json()["detail"]) >= {"field", "reason", "message"}
    r = api.request("PUT", "/api/clusters")
    assert r.status_code == 405 and set(r.json()["detail"]) >= {"field", "reason", "message"}
    assert field_of(send(api, "POST", "/api/clusters", b"{oops")) == "body"


def test_plain_file_names_are_stored_as_paths_in_the_engines_allowlists(api):
    r = send(api, "POST", "/api/vms", {**VM, "kernel": "vmlinuz", "console_log": "vm2.log",
                                       "emulator": "/usr/bin/qemu-system-x86_64"})
    assert r.status_code == 201, r.text
    spec = r.json()["spec"]
    assert (spec["kernel"], spec["console_log"]) == (KERNEL, "/var/log/libvirt/qemu/vm2.log")


def test_cli_vcpus_zero_is_sent_as_zero_not_one():
    from ferry.cli.inventory.vms import _vm_body

    none = dict.fromkeys(("policy", "parallel", "encrypted", "auto_converge", "compressed", "downtime_ms"))
    assert _vm_body("vm2", "c1", 1024, 0, KERNEL, None, None, None, None, None, none)["vcpus"] == 0
    assert _vm_body("vm2", "c1", 1024, None, KERNEL, None, None, None, None, None, none)["vcpus"] == 1
    with pytest.raises(InvalidInput) as err:  # a workload guest's spec is built (and refused) here
        _vm_body("vm2", "c1", 1024, 0, None, None, None, None, None, "fill=64", none)
    assert err.value.field == "vcpus"


def test_without_a_token_a_bad_body_still_gets_401_first(api):
    body = b"[" * 5000 + b"]" * 5000
    r = api.post("/api/clusters", content=body, headers={"Authorization": "", "Content-Type": "application/json"})
    assert r.status_code == 401 and r.json()["detail"]["field"] == "Authorization"
