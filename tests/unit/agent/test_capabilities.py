"""Zero-copy capability checks (pure evaluation) and the QEMU probe on this machine."""
import os
import shutil

import pytest

from ferry.agent import capabilities as caps

GOOD = dict(binding_has_flag=True, libvirt_version=11_003_000,
            qemu_migration_capabilities=("multifd", "zero-copy-send"), msg_zerocopy=True,
            memlock_hard_limit=None, can_raise_memlock=True, optmem_max=131072)


def result(checks, name):
    return next(c["result"] for c in checks if c["check"] == name)


def test_all_requirements_met():
    ok, checks = caps.evaluate_zerocopy(caps.ZerocopyFacts(**GOOD))
    assert ok and all(c["result"] == "pass" for c in checks)


@pytest.mark.parametrize("change, failed", [
    ({"binding_has_flag": False}, "libvirt_binding"),
    ({"libvirt_version": 8_004_000}, "libvirt_daemon"),
    ({"libvirt_version": None}, "libvirt_daemon"),
    ({"qemu_migration_capabilities": ("multifd",)}, "qemu_zero_copy_send"),
    ({"qemu_migration_capabilities": None, "qemu_probe_error": "no QEMU"}, "qemu_zero_copy_send"),
    ({"msg_zerocopy": False, "msg_zerocopy_error": "Protocol not available"}, "kernel_msg_zerocopy"),
])
def test_each_requirement_can_fail_alone(change, failed):
    ok, checks = caps.evaluate_zerocopy(caps.ZerocopyFacts(**{**GOOD, **change}))
    assert not ok
    assert [c["check"] for c in checks if c["result"] == "fail"] == [failed]


def test_warnings_do_not_disable_zerocopy():
    facts = caps.ZerocopyFacts(**{**GOOD, "can_raise_memlock": False, "memlock_hard_limit": 8 << 20,
                                  "optmem_max": 20480, "vms_with_hard_limit": (("big", 8192),)})
    ok, checks = caps.evaluate_zerocopy(facts)
    assert ok
    assert {c["check"] for c in checks if c["result"] == "warn"} == {"memlock", "optmem_max", "memtune_hard_limit:big"}
    assert "8192 KiB" in next(c["reason"] for c in checks if c["check"] == "memlock")


def test_hard_limit_units():
    assert caps.hard_limit_kib("<domain><memtune><hard_limit unit='KiB'>8192</hard_limit></memtune></domain>") == 8192
    assert caps.hard_limit_kib("<domain><memtune><hard_limit unit='MiB'>8</hard_limit></memtune></domain>") == 8192
    assert caps.hard_limit_kib("<domain/>") is None
    assert caps.version_text(11_003_000) == "11.3.0"


@pytest.mark.skipif(not os.path.exists("/usr/bin/qemu-system-x86_64"), reason="QEMU is not installed here")
def test_probe_this_qemu():
    found = caps.probe_qemu_migration_capabilities(shutil.which("qemu-system-x86_64"))
    assert "multifd" in found and "zero-copy-send" in found   # QEMU 10 on Linux has both
