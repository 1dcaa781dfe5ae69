"""VmSpec validation and the domain XML built from it (ferry.common.vmspec / domain_xml)."""
import xml.etree.ElementTree as ET

import pytest

from ferry.common.domain_xml import build_domain_xml
from ferry.common.errors import InvalidInput
from ferry.common.vmspec import VmSpec, default_console_log, uuid_for_name


def spec(**kw):
    base = dict(name="vm1", memory_mib=1024, vcpus=1, kernel="/img/vmlinuz",
                initrd="/img/initrd.cpio.gz", cmdline="console=ttyS0 ferry.fill=850")
    base.update(kw)
    return VmSpec(**base)


def parse(s):
    return ET.fromstring(build_domain_xml(s))


def test_tcg_spec_gives_qemu_domain_with_kernel_boot_and_logged_serial():
    root = parse(spec())
    assert root.get("type") == "qemu"
    assert root.findtext("name") == "vm1"
    assert root.findtext("uuid") == uuid_for_name("vm1")
    assert root.find("memory").get("unit") == "MiB" and root.findtext("memory") == "1024"
    assert root.findtext("currentMemory") == "1024"
    assert root.findtext("vcpu") == "1"
    assert root.findtext("os/kernel") == "/img/vmlinuz"
    assert root.findtext("os/initrd") == "/img/initrd.cpio.gz"
    assert root.findtext("os/cmdline") == "console=ttyS0 ferry.fill=850"
    log = root.find("devices/serial/log")
    assert log.get("file") == "/var/log/libvirt/qemu/vm1-serial.log"
    assert log.get("append") == "on"
    assert root.find("devices/serial").get("type") == "pty"
    assert root.find("devices/memballoon").get("model") == "none"
    assert root.findtext("on_reboot") == "destroy" and root.findtext("on_crash") == "destroy"
    assert root.find("memtune") is None
    assert root.findtext("devices/emulator") == "/usr/bin/qemu-system-x86_64"


def test_kvm_accel_gives_kvm_domain():
    assert parse(spec(accel="kvm")).get("type") == "kvm"


def test_memtune_hard_limit_only_when_asked():
    root = parse(spec(memtune_hard_limit_kib=8192))
    hl = root.find("memtune/hard_limit")
    assert hl.get("unit") == "KiB" and hl.text == "8192"


def test_optional_parts_left_out():
    root = parse(spec(initrd=None, cmdline=""))
    assert root.find("os/initrd") is None and root.find("os/cmdline") is None


def test_explicit_uuid_and_console_log_are_used_and_uuid_canonicalised():
    u = "6F0E1A2B-3C4D-4E5F-8A9B-0C1D2E3F4A5B"
    root = parse(spec(uuid=u, console_log="/tmp/x.log"))
    assert root.findtext("uuid") == u.lower()
    assert root.find("devices/serial/log").get("file") == "/tmp/x.log"


def test_cmdline_special_characters_are_escaped():
    s = spec(cmdline="a=<b> & 'c' \"d\"")
    assert parse(s).findtext("os/cmdline") == "a=<b> & 'c' \"d\""


def test_derived_uuid_is_stable_and_name_specific():
    assert uuid_for_name("a") == uuid_for_name("a") != uuid_for_name("b")
    assert default_console_log("x") == "/var/log/libvirt/qemu/x-serial.log"


@pytest.mark.parametrize("field,value", [
    ("name", ""), ("name", "has space"), ("name", "-lead"), ("name", "x" * 64), ("name", 3),
    ("memory_mib", 0), ("memory_mib", "1024"), ("memory_mib", True), ("memory_mib", 1.5),
    ("vcpus", 0), ("vcpus", 257),
    ("kernel", "relative/vmlinuz"), ("kernel", None), ("initrd", "rel"),
    ("cmdline", "a\nb"), ("cmdline", 5),
    ("uuid", "not-a-uuid"), ("accel", "hvf"), ("accel", "KVM"),
    ("memtune_hard_limit_kib", 0), ("memtune_hard_limit_kib", "8192"),
    ("console_log", "log.txt"), ("emulator", "qemu"), ("machine", "Bad Machine"),
])
def test_invalid_field_is_named(field, value):
    with pytest.raises(InvalidInput) as info:
        spec(**{field: value})
    assert info.value.field == field


def test_dict_round_trip():
    s = spec(memtune_hard_limit_kib=8192, accel="kvm")
    assert VmSpec.from_dict(s.to_dict()) == s


def test_from_dict_names_missing_and_unknown_fields():
    with pytest.raises(InvalidInput) as info:
        VmSpec.from_dict({"name": "a", "memory_mib": 64, "vcpus": 1})
    assert info.value.field == "kernel"
    with pytest.raises(InvalidInput) as info:
        VmSpec.from_dict({**spec().to_dict(), "disks": []})
    assert info.value.field == "disks"
    with pytest.raises(InvalidInput):
        VmSpec.from_dict(["not", "a", "dict"])


def test_an_empty_unknown_key_in_a_spec_still_names_a_field():
    """Found by the agent fuzz: a JSON-RPC invalid-params error must name a field, even for key ''."""
    from ferry.common.errors import InvalidInput
    from ferry.common.vmspec import VmSpec

    with pytest.raises(InvalidInput) as err:
        VmSpec.from_dict({"": 1, "name": "v", "memory_mib": 64, "kernel": "k"})
    assert err.value.field == "vm"
