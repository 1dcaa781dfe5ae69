"""QEMU's own answers about a migration, asked through libvirt (QMP pass-through, job stats).

The proof beyond the flags: the demo and the benchmarks ask the source QEMU whether zero-copy
send and multifd are really on, and the destination for its completed-job figures. Those are
lab observations, so the libvirt calls live here in the lab, not in the CLI or bench code.
"""
from __future__ import annotations

import json
from typing import Any


def qmp(dom, command: str) -> Any:
    """The "return" of one argument-less QMP command on the domain's QEMU."""
    import libvirt_qemu

    return json.loads(libvirt_qemu.qemuMonitorCommand(dom, json.dumps({"execute": command}), 0))["return"]


def query_migrate(dom) -> dict:
    return qmp(dom, "query-migrate")


def migrate_capabilities(dom) -> list[dict]:
    """[{"capability": NAME, "state": bool}, ...] as QEMU reports them."""
    return qmp(dom, "query-migrate-capabilities")


def migration_setup(conn, vm: str) -> dict[str, Any]:
    """Whether zero-copy-send and multifd are on, and the multifd channel count, on `vm`'s QEMU."""
    dom = conn.lookupByName(vm)
    on = {c["capability"]: c["state"] for c in migrate_capabilities(dom)}
    params = qmp(dom, "query-migrate-parameters")
    return {"zero-copy-send": on.get("zero-copy-send"), "multifd": on.get("multifd"),
            "multifd-channels": params.get("multifd-channels")}


def completed_job_stats(conn, vm: str) -> dict | None:
    """libvirt's completed-job statistics of `vm` (the migration that just arrived), or None."""
    import libvirt

    try:
        return conn.lookupByName(vm).jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED) or None
    except libvirt.libvirtError:
        return None
