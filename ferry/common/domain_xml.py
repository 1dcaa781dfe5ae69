"""The one builder of libvirt domain XML from a VmSpec (pure: no libvirt, no I/O).

    build_domain_xml(spec: VmSpec) -> str

The domain is a direct-kernel-boot guest with no disks and no network: its whole state is
its RAM, which is what migration moves. Choices and why:
- `type='kvm'` or `type='qemu'` (TCG) from `spec.accel`.
- The serial console is a pty whose output libvirt also appends to `spec.console_log`
  (`<log append='on'>`), so heartbeats are readable from outside the host, and a migrated
  guest keeps appending to the same path on its destination host.
- No balloon (it would move memory behind the workload's back) and destroy on reboot/crash,
  so a guest that panics stops instead of silently rebooting into a fresh, "clean" memory.
- `<memtune><hard_limit>` only when the spec asks for it (zero-copy workaround on hosts
  without CAP_SYS_RESOURCE; see ferry.lab.memlock).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

from ferry.common.vmspec import VmSpec


def build_domain_xml(spec: VmSpec) -> str:
    """libvirt domain XML for `spec` (a string, ready for defineXML / createXML)."""
    domain = ET.Element("domain", type="kvm" if spec.accel == "kvm" else "qemu")
    ET.SubElement(domain, "name").text = spec.name
    ET.SubElement(domain, "uuid").text = spec.effective_uuid
    ET.SubElement(domain, "memory", unit="MiB").text = str(spec.memory_mib)
    ET.SubElement(domain, "currentMemory", unit="MiB").text = str(spec.memory_mib)
    ET.SubElement(domain, "vcpu", placement="static").text = str(spec.vcpus)
    if spec.memtune_hard_limit_kib is not None:
        memtune = ET.SubElement(domain, "memtune")
        ET.SubElement(memtune, "hard_limit", unit="KiB").text = str(spec.memtune_hard_limit_kib)

    os_el = ET.SubElement(domain, "os")
    ET.SubElement(os_el, "type", arch="x86_64", machine=spec.machine).text = "hvm"
    ET.SubElement(os_el, "kernel").text = spec.kernel
    if spec.initrd is not None:
        ET.SubElement(os_el, "initrd").text = spec.initrd
    if spec.cmdline:
        ET.SubElement(os_el, "cmdline").text = spec.cmdline

    features = ET.SubElement(domain, "features")
    ET.SubElement(features, "acpi")
    ET.SubElement(domain, "clock", offset="utc")
    ET.SubElement(domain, "on_poweroff").text = "destroy"
    ET.SubElement(domain, "on_reboot").text = "destroy"
    ET.SubElement(domain, "on_crash").text = "destroy"

    devices = ET.SubElement(domain, "devices")
    ET.SubElement(devices, "emulator").text = spec.emulator
    serial = ET.SubElement(devices, "serial", type="pty")
    ET.SubElement(serial, "log", file=spec.effective_console_log, append="on")
    ET.SubElement(serial, "target", port="0")
    console = ET.SubElement(devices, "console", type="pty")
    ET.SubElement(console, "target", type="serial", port="0")
    ET.SubElement(devices, "memballoon", model="none")

    ET.indent(domain, space="  ")
    return ET.tostring(domain, encoding="unicode") + "\n"
