"""The engine's input checks, rule by rule (ferry.engine.validation, ferry.engine.vm_validation,
ferry.engine.api.body_guard): what issue 12 found accepted is refused, naming the field, and
what Ferry itself sends is still accepted."""
from __future__ import annotations

import json

import pytest

from ferry.common.errors import InvalidInput
from ferry.engine.api.body_guard import MAX_DEPTH, body_problem, json_depth
from ferry.engine.validation import (
    check_address,
    check_json,
    check_name,
    check_policy_name,
    check_ref,
    check_text,
    check_url,
    policy_input,
)
from ferry.engine.vm_validation import (
    MAX_HARD_LIMIT_KIB,
    VmPathRules,
    check_spec_fields,
    check_workload,
)

RULES = VmPathRules(emulators=("/usr/bin/qemu-system-x86_64",), images_dirs=("/var/lib/ferry/images",),
                    console_log_dir="/var/log/libvirt/qemu")


def refused(fn, *args) -> InvalidInput:
    with pytest.raises(InvalidInput) as err:
        fn(*args)
    return err.value


@pytest.mark.parametrize("value", ["\ud800", "a\udfffb", "a\x00b", "x" * 4097])
def test_text_refuses_surrogates_nul_and_oversize(value):
    assert refused(check_text, "description", value).field == "description"


def test_text_accepts_ordinary_unicode_and_a_ref_is_one_line():
    assert check_text("description", "große VM ✓\nzweite Zeile") == "große VM ✓\nzweite Zeile"
    assert refused(check_ref, "policy", "a\nb").reason == "must be one line"
    assert refused(check_ref, "policy", "p" * 256).field == "policy"


@pytest.mark.parametrize("name", ["../../../etc/passwd", "a/b", "a\x00b", "", ".", "..", "  ", "a  b", "x" * 64,
                                  "\ud800"])
def test_policy_names_refuse_paths_nul_and_dots(name):
    assert refused(check_policy_name, "name", name).field == "name"
    assert refused(policy_input, {"name": name}).field == "name"


@pytest.mark.parametrize("name", ["Fast lane", "big-1.0_x", "Minimal downtime"])
def test_policy_names_like_ovirts_are_accepted(name):
    assert check_policy_name("name", name) == name


@pytest.mark.parametrize("name", ["a/b", "a b", "-x", "x" * 64, "a\x00", "\ud800"])
def test_resource_names_are_the_safe_charset(name):
    assert refused(check_name, "name", name).field == "name"


@pytest.mark.parametrize("address", ["999.999.1.1", "10.0.0.300", "1.2.3", "no way", "a_b", "-h", "h" * 254, "\ud800"])
def test_addresses_must_parse_as_ip_or_dns_name(address):
    assert refused(check_address, "address", address).field == "address"


@pytest.mark.parametrize("address, canonical", [("10.0.0.1", "10.0.0.1"), ("kvm-07.example.org", "kvm-07.example.org"),
                                                ("::1", "::1"), ("fe80:0::1", "fe80::1")])
def test_addresses_accepted(address, canonical):
    assert check_address("address", address) == canonical


@pytest.mark.parametrize("url, words", [
    ("http://[::1", "not a valid URL"),
    ("https://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://169.254.1.1:54321/", "link-local"),
    ("https://[fe80::1]:54321/", "link-local"),
    ("https://[::ffff:169.254.169.254]/", "link-local"),
    ("http://[fd00:ec2::254]/", "metadata"),
    ("http://metadata.google.internal/", "metadata"),
    ("https://0.0.0.0:54321/", "not a host"),
    ("ftp://h1:54321/", "http:// or https://"),
    ("https://h1:0/", "1..65535"),
    ("https://h1:99999/", "not a valid URL"),
    ("https://user:pw@h1:54321/", "no user or password"),
    ("https://999.999.1.1:54321/", "not an IP address"),
    ("https://h1:54321/\x00", "not an http"),
    ("https://h 1:54321/", "not an http"),
])
def test_agent_urls_refused(url, words):
    err = refused(check_url, "agent_url", url)
    assert err.field == "agent_url" and words in err.reason


@pytest.mark.parametrize("url", ["https://127.0.0.1:54321/", "http://[::1]:54321/jsonrpc", "https://kvm-07:54321/"])
def test_agent_urls_accepted(url):
    assert check_url("agent_url", url) == url


@pytest.mark.parametrize("value, field", [
    ({"a": 2 ** 63}, "capabilities.a"),
    ({"a": [-(2 ** 63) - 1]}, "capabilities.a[0]"),
    ({"a": "\ud800"}, "capabilities.a"),
    ({"a\x00": 1}, "capabilities.<key>"),
    ({"a": float("nan")}, "capabilities.a"),
])
def test_json_values_must_be_storable(value, field):
    assert refused(check_json, "capabilities", value).field == field


def test_json_depth_is_bounded():
    deep: object = 1
    for _ in range(20):
        deep = {"a": deep}
    assert "nested" in refused(check_json, "capabilities", deep).reason


@pytest.mark.parametrize("fields, field", [
    ({"memory_mib": 2 ** 31}, "memory_mib"),
    ({"memory_mib": 2 ** 63}, "memory_mib"),
    ({"memory_mib": 8}, "memory_mib"),
    ({"vcpus": 0}, "vcpus"),
    ({"vcpus": 513}, "vcpus"),
    ({"memtune_hard_limit_kib": 10 ** 30}, "memtune_hard_limit_kib"),
    ({"memtune_hard_limit_kib": 0}, "memtune_hard_limit_kib"),
    ({"kernel": "/etc/shadow"}, "kernel"),
    ({"kernel": "/var/lib/ferry/images/../../../etc/shadow"}, "kernel"),
    ({"kernel": "/var/lib/ferry/imagesX/k"}, "kernel"),
    ({"kernel": "relative/path"}, "kernel"),
    ({"initrd": "a\x00b"}, "initrd"),
    ({"console_log": "/etc/passwd"}, "console_log"),
    ({"console_log": "/var/log/libvirt/qemu/../../../etc/passwd"}, "console_log"),
    ({"emulator": "/tmp/evil.sh"}, "emulator"),
    ({"emulator": "/usr/bin/qemu-system-x86_64x"}, "emulator"),
    ({"emulator": "evil.sh"}, "emulator"),
    ({"cmdline": "console=ttyS0\ud800"}, "cmdline"),
    ({"cmdline": "a\nb"}, "cmdline"),
    ({"cmdline": "x" * 4097}, "cmdline"),
    ({"machine": "pc;rm -rf /"}, "machine"),
])
def test_vm_spec_fields_refused(fields, field):
    assert refused(check_spec_fields, fields, RULES).field == field


def test_vm_spec_plain_file_names_become_paths_in_the_allowlists():
    out = check_spec_fields({"kernel": "vmlinuz", "initrd": "initrd.img", "console_log": "vm1.log",
                             "emulator": "qemu-system-x86_64", "memory_mib": 1024, "vcpus": 512,
                             "memtune_hard_limit_kib": MAX_HARD_LIMIT_KIB}, RULES)
    assert out == {"kernel": "/var/lib/ferry/images/vmlinuz", "initrd": "/var/lib/ferry/images/initrd.img",
                   "console_log": "/var/log/libvirt/qemu/vm1.log", "emulator": "/usr/bin/qemu-system-x86_64",
                   "memory_mib": 1024, "vcpus": 512, "memtune_hard_limit_kib": MAX_HARD_LIMIT_KIB}
    assert check_spec_fields(out, RULES) == out  # a stored spec passes as it is


def test_engine_allowlists_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("FERRY_ENGINE_IMAGES_DIRS", "/srv/a:/srv/b")
    monkeypatch.setenv("FERRY_ENGINE_EMULATORS", "/usr/libexec/qemu-kvm")
    monkeypatch.setenv("FERRY_ENGINE_CONSOLE_LOG_DIR", "/srv/log")
    rules = VmPathRules.from_env()
    assert rules == VmPathRules(("/usr/libexec/qemu-kvm",), ("/srv/a", "/srv/b"), "/srv/log")
    assert check_spec_fields({"kernel": "/srv/b/k", "emulator": "qemu-kvm"}, rules) == {
        "kernel": "/srv/b/k", "emulator": "/usr/libexec/qemu-kvm"}
    assert refused(check_spec_fields, {"kernel": "/var/lib/ferry/images/k"}, rules).field == "kernel"


@pytest.mark.parametrize("workload, field", [
    ({"fill_mib": 2 ** 63}, "workload.fill_mib"),
    ({"fill_mib": 2048}, "workload.fill_mib"),       # more than the VM's 1024 MiB
    ({"fill_mib": 64, "dirty_mib_s": -32}, "workload.dirty_mib_s"),
    ({"fill_mib": 64, "spot_pages": 10 ** 7}, "workload.spot_pages"),
    ({"fill_mib": "64"}, "workload.fill_mib"),
    ({"colour": 1}, "workload.colour"),
])
def test_workload_figures_are_bounded(workload, field):
    assert refused(check_workload, "workload", workload, 1024).field == field


def test_workload_as_the_cli_sends_it():
    assert check_workload("workload", {"fill_mib": 850, "dirty_mib_s": 32, "spot_pages": 256}, 1024) == {
        "fill_mib": 850, "dirty_mib_s": 32, "spot_pages": 256}


def test_body_guard_measures_depth_without_parsing():
    assert json_depth(b'{"a": [1, {"b": "[[[[{{{{"}]}') == 3
    assert json_depth(b'"\\"[[["') == 0
    assert json_depth(b"[" * 100_000 + b"]" * 100_000) == 100_000


@pytest.mark.parametrize("body, expected", [
    (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), (422, "body")),
    (b'{"a":' * 5000 + b"1" + b"}" * 5000, (422, "body")),
    (json.dumps({"cmdline": "\ud800"}).encode(), (422, "cmdline")),
    (json.dumps({"overrides": {"policy": "a\x00"}}).encode(), (422, "overrides.policy")),
    (json.dumps({"init": [{"name": "x" * 70_000}]}).encode(), (422, "init[0].name")),
    (json.dumps({"\ud800": 1}).encode(), (422, "body")),
    (b" " * (1024 * 1024 + 1), (413, "body")),
])
def test_body_guard_refusals_name_the_field(body, expected):
    problem = body_problem(body)
    assert problem is not None and problem[:2] == expected


def test_body_guard_passes_ordinary_bodies_and_leaves_bad_json_to_the_route():
    assert body_problem(json.dumps({"name": "vm1", "overrides": {"policy": "Very large VMs"}}).encode()) is None
    assert body_problem(b"{oops") is None
