"""`ferry vm ...`: VMs in the inventory, their migration overrides, and lab workload guests."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from ferry.cli.inventory.common import (
    INHERIT,
    TRISTATE,
    UNSET,
    emit,
    engine_client,
    fields,
    json_option,
    list_show_remove,
    nothing_to_change,
    onoff,
    parallel_text,
    parse_parallel,
    table,
    tristate,
)
from ferry.common.errors import InvalidInput


def _override_options(f: Callable) -> Callable:
    opts = [
        click.option("--policy", default=None, help=f"Policy name or id, or '{INHERIT}'."),
        click.option("--parallel", default=None, help=f"AUTO, AUTO_PARALLEL, DISABLED, CUSTOM:N, N, or '{INHERIT}'."),
        click.option("--encrypted", type=TRISTATE, default=None),
        click.option("--auto-converge", type=TRISTATE, default=None),
        click.option("--compressed", type=TRISTATE, default=None),
        click.option("--downtime", "downtime_ms", default=None, help=f"Maximum downtime in ms, or '{INHERIT}'."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _overrides_body(policy, parallel, encrypted, auto_converge, compressed, downtime_ms) -> dict:
    body: dict[str, Any] = {}
    if policy is not None:
        body["policy"] = None if policy.lower() == INHERIT else policy
    if parallel is not None:
        body["parallel"] = None if parallel.lower() == INHERIT else parse_parallel(parallel)
    for key, value in (("encrypted", encrypted), ("auto_converge", auto_converge), ("compressed", compressed)):
        v = tristate(value)
        if v is not UNSET:
            body[key] = v
    if downtime_ms is not None:
        if downtime_ms.lower() == INHERIT:
            body["downtime_ms"] = None
        elif downtime_ms.isdigit() and int(downtime_ms) > 0:
            body["downtime_ms"] = int(downtime_ms)
        else:
            raise InvalidInput("downtime_ms", f"must be a positive number of ms or '{INHERIT}', got {downtime_ms!r}")
    return body


def _render_vm(v: dict) -> None:
    o = v["overrides"]
    fields(f"VM {v['name']}", [
        ("uuid", v["uuid"]), ("cluster", v["cluster"]), ("host", v["host"]), ("status", v["status"]),
        ("memory_mib", v["memory_mib"]), ("vcpus", v["vcpus"]), ("kernel", v["spec"].get("kernel")),
        ("policy", (o["policy"] or {}).get("name") or (o["policy"] or {}).get("id") or "inherit"),
        ("parallel", parallel_text(o["parallel"])), ("encrypted", onoff(o["encrypted"])),
        ("auto_converge", onoff(o["auto_converge"])), ("compressed", onoff(o["compressed"])),
        ("downtime_ms", o["downtime_ms"] if o["downtime_ms"] is not None else "inherit"),
    ])


def _render_vms(vs: list[dict]) -> None:
    table("VMs", ["name", "cluster", "host", "status", "memory MiB", "vCPUs", "policy"], [
        [v["name"], v["cluster"], v["host"], v["status"], v["memory_mib"], v["vcpus"],
         (v["overrides"]["policy"] or {}).get("name") or "inherit"] for v in vs])


@click.group("vm")
def vm_group() -> None:
    """VMs in the inventory and their migration overrides."""


def parse_workload(text: str | None) -> dict | None:
    """'fill=850,dirty=32[,spot=256]' -> {"fill_mib": 850, "dirty_mib_s": 32, "spot_pages": 256}."""
    if text is None:
        return None
    keys = {"fill": "fill_mib", "dirty": "dirty_mib_s", "spot": "spot_pages"}
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in keys:
            raise InvalidInput("workload", f"{part!r} is not fill=MIB, dirty=MIB_PER_S or spot=PAGES")
        if not value.strip().isdigit():
            raise InvalidInput(f"workload.{key}", f"must be a whole number, got {value.strip()!r}")
        out[keys[key]] = int(value)
    if "fill_mib" not in out:
        raise InvalidInput("workload.fill", "is required (MiB of guest memory the workload fills)")
    return out


def workload_vm_spec(name: str, memory_mib: int, vcpus: int, workload: dict) -> dict:
    """The spec of a lab workload guest: the lab's guest images, accelerator and memtune
    workaround (ferry.lab), with the workload's parameters on the kernel command line."""
    from ferry.lab import Lab

    spec = Lab().guest_spec(name, memory_mib=memory_mib, vcpus=vcpus, **workload)
    return spec.to_dict()


def _vm_body(name, cluster, memory_mib, vcpus, kernel, initrd, cmdline, uuid, accel, workload, overrides) -> dict:
    wl = parse_workload(workload)
    if wl is not None:
        if kernel or initrd or cmdline:
            raise InvalidInput("workload", "give either --workload (a lab guest) or --kernel/--initrd/--cmdline")
        body = {**workload_vm_spec(name, memory_mib, 1 if vcpus is None else vcpus, wl), "cluster": cluster, "workload": wl}
        if uuid:
            body["uuid"] = uuid
        if accel:
            body["accel"] = accel
    else:
        if not kernel:
            raise InvalidInput("kernel", "is required (or --workload for a lab workload guest)")
        body = {"name": name, "cluster": cluster, "memory_mib": memory_mib, "vcpus": 1 if vcpus is None else vcpus,
                "kernel": kernel, "initrd": initrd, "cmdline": cmdline, "uuid": uuid, "accel": accel}
    body = {k: v for k, v in body.items() if v is not None}
    o = _overrides_body(**overrides)
    if o:
        body["overrides"] = o
    return body


def _vm_spec_options(f: Callable) -> Callable:
    opts = [
        click.option("--cluster", required=True),
        click.option("--memory", "memory_mib", type=int, required=True, help="MiB."),
        click.option("--vcpus", type=int, default=None, help="Default 1."),
        click.option("--kernel", default=None, help="Absolute path of the guest kernel on the hosts."),
        click.option("--initrd", default=None),
        click.option("--cmdline", default=None),
        click.option("--uuid", default=None),
        click.option("--accel", default=None, help="tcg or kvm."),
        click.option("--workload", default=None, metavar="fill=MIB,dirty=MIB/S[,spot=N]",
                     help="A lab workload guest: the lab's guest images with this workload (no --kernel)."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


@vm_group.command("add")
@click.argument("name")
@_vm_spec_options
@click.option("--host", default=None, help="Record it as running there now (default: not running).")
@_override_options
@json_option
def vm_add(name, cluster, memory_mib, vcpus, kernel, initrd, cmdline, uuid, accel, workload, host, as_json,
           **overrides):
    """Add a VM to the inventory (this does not start it; see `vm create` / `vm start`)."""
    body = _vm_body(name, cluster, memory_mib, vcpus, kernel, initrd, cmdline, uuid, accel, workload, overrides)
    if host is not None:
        body["host"] = host
    emit(engine_client().post("/api/vms", body), as_json, _render_vm)


@vm_group.command("create")
@click.argument("name")
@_vm_spec_options
@click.option("--on", "on_host", default=None, help="Host to start it on (default: the engine picks).")
@_override_options
@json_option
def vm_create(name, cluster, memory_mib, vcpus, kernel, initrd, cmdline, uuid, accel, workload, on_host, as_json,
              **overrides):
    """Add a VM to the inventory and start it on a host through its agent."""
    client = engine_client()
    body = _vm_body(name, cluster, memory_mib, vcpus, kernel, initrd, cmdline, uuid, accel, workload, overrides)
    client.post("/api/vms", body)
    client.post(f"/api/vms/{name}/start", {"host": on_host} if on_host else {})
    emit(client.get(f"/api/vms/{name}"), as_json, _render_vm)


@vm_group.command("start")
@click.argument("name")
@click.option("--on", "on_host", default=None, help="Host to start it on (default: the engine picks).")
@json_option
def vm_start(name, on_host, as_json):
    """Start a VM that is down, on a host through its agent (VM.create)."""
    client = engine_client()
    client.post(f"/api/vms/{name}/start", {"host": on_host} if on_host else {})
    emit(client.get(f"/api/vms/{name}"), as_json, _render_vm)


@vm_group.command("stop")
@click.argument("name")
@json_option
def vm_stop(name, as_json):
    """Stop (destroy) a running VM on its host."""
    client = engine_client()
    client.post(f"/api/vms/{name}/stop", {})
    emit(client.get(f"/api/vms/{name}"), as_json, _render_vm)


@vm_group.command("set")
@click.argument("name")
@click.option("--memory", "memory_mib", type=int, default=None, help="MiB.")
@click.option("--vcpus", type=int, default=None)
@click.option("--kernel", default=None)
@click.option("--cmdline", default=None)
@click.option("--cluster", default=None)
@click.option("--host", default=None, help="The host it runs on, or 'none'.")
@click.option("--status", default=None, help="DOWN, UP, PAUSED, MIGRATING.")
@_override_options
@json_option
def vm_set(name, memory_mib, vcpus, kernel, cmdline, cluster, host, status, as_json, **overrides):
    """Change a VM's inventory record and its overrides (only those given; 'inherit' clears one)."""
    body: dict[str, Any] = {k: v for k, v in {"memory_mib": memory_mib, "vcpus": vcpus, "kernel": kernel,
                                              "cmdline": cmdline, "cluster": cluster, "status": status}.items()
                            if v is not None}
    if host is not None:
        body["host"] = None if host.lower() == "none" else host
    o = _overrides_body(**overrides)
    if o:
        body["overrides"] = o
    if not body:
        raise nothing_to_change()
    emit(engine_client().patch(f"/api/vms/{name}", body), as_json, _render_vm)


list_show_remove(vm_group, noun="VM", path="/api/vms", render_one=_render_vm, render_many=_render_vms,
                 list_help="List VMs.", show_help="Show a VM and its overrides.",
                 remove_help="Remove a VM from the inventory (it must not be migrating).", filters=("cluster", "host"))
