"""VMs on this host as the agent reports them: libvirt domains with Vdsm's status names.

A VM's id is its domain UUID. VM.create starts a transient domain (as Vdsm does); a migrated-in
VM is persistent on the destination (PERSIST_DEST), so destroying it also undefines it.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

from ferry.common.domain_xml import build_domain_xml
from ferry.common.errors import InvalidInput
from ferry.common.vmspec import VmSpec

UP, PAUSED, DOWN = "Up", "Paused", "Down"
MIGRATION_SOURCE, MIGRATION_DESTINATION = "Migration Source", "Migration Destination"


def domain_xml_from_create_params(params: dict) -> str:
    """VM.create params -> domain XML: {"spec": {...VmSpec fields}} or {"xml": "<domain ...>"}."""
    spec = params.get("spec")
    xml = params.get("xml")
    if (spec is None) == (xml is None):
        raise InvalidInput("spec", "give exactly one of spec (a VM spec) or xml (a domain XML)")
    if xml is not None:
        if not isinstance(xml, str):
            raise InvalidInput("xml", "must be a string of libvirt domain XML")
        try:
            root = ET.fromstring(xml)
        except ET.ParseError as exc:
            raise InvalidInput("xml", f"is not well-formed XML: {exc}") from None
        if root.tag != "domain":
            raise InvalidInput("xml", f"root element must be <domain>, got <{root.tag}>")
        if root.findtext("name") is None:
            raise InvalidInput("xml", "the domain has no <name>")
        return xml
    return build_domain_xml(VmSpec.from_dict(spec))


def status_name(lv, state: int) -> str:
    if state in (lv.VIR_DOMAIN_RUNNING, lv.VIR_DOMAIN_BLOCKED):
        return UP
    if state == lv.VIR_DOMAIN_PAUSED:
        return PAUSED
    return DOWN


def migration_refusal(lv, state: int, reason: int) -> str | None:
    """Why a VM in this libvirt state cannot migrate, or None when it can.

    As Vdsm: a running VM migrates, and so does a paused one (it stays paused on the
    destination), except one paused on an I/O error -- its disk is in trouble here, and the
    guest must not resume elsewhere behind the administrator's back.
    """
    if state in (lv.VIR_DOMAIN_RUNNING, lv.VIR_DOMAIN_BLOCKED):
        return None
    if state == lv.VIR_DOMAIN_PAUSED:
        if reason == lv.VIR_DOMAIN_PAUSED_IOERROR:
            return "is paused on an I/O error and is not migrated (resume or fix its storage first)"
        return None
    return f"is not running (status {status_name(lv, state)})"


def domain_summary(lv, dom) -> dict:
    state, _reason = dom.state()
    return {"vmID": dom.UUIDString(), "name": dom.name(), "status": status_name(lv, state)}


def domain_stats(lv, dom) -> dict:
    state, max_mem_kib, mem_kib, vcpus, cpu_time_ns = dom.info()
    return {
        "vmID": dom.UUIDString(),
        "name": dom.name(),
        "status": status_name(lv, state),
        "memSize": max_mem_kib // 1024,        # MiB
        "vcpuCount": vcpus,
        "cpuTimeNs": cpu_time_ns,
        "persistent": bool(dom.isPersistent()),
    }
