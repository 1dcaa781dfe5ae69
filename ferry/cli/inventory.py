"""`ferry cluster|host|vm|policy ...`: the engine's inventory from the command line.

Every command talks to the engine's REST API (FERRY_ENGINE_URL), prints a table by default and
the engine's JSON with --json. Bad input exits with code 2 and a message naming the field; the
short forms of settings are checked here before anything is sent (parallel AUTO, AUTO_PARALLEL,
DISABLED, CUSTOM:N or N; bandwidth AUTO, HYPERVISOR_DEFAULT, CUSTOM:MBPS or MBPS).
"""
from __future__ import annotations

import json
import pathlib
from collections.abc import Callable
from typing import Any

import click

from ferry.common.errors import InvalidInput
from ferry.engine.options import BandwidthMode, BandwidthSetting, ParallelSetting

INHERIT = "inherit"


# ------------------------------------------------------------------ helpers

def _client():
    from ferry.client.engine_client import EngineClient

    return EngineClient()


def json_option(f: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(f)


def _emit(data: Any, as_json: bool, render: Callable[[Any], None]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=False))
    else:
        render(data)


def _table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for c in columns:
        table.add_column(c, overflow="fold")
    for r in rows:
        table.add_row(*["-" if v is None else str(v) for v in r])
    console = Console()
    if not console.is_terminal:  # piped or captured: do not fold cells at 80 columns
        console = Console(width=200)
    console.print(table)


def _fields(title: str, pairs: list[tuple[str, Any]]) -> None:
    _table(title, ["field", "value"], [[k, v] for k, v in pairs])


def parse_parallel(text: str | None, field: str = "parallel") -> dict | None:
    if text is None:
        return None
    s = ParallelSetting.parse(text, field)
    return {"mode": s.mode.value, "connections": s.connections}


def parse_bandwidth(text: str | None) -> dict | None:
    if text is None:
        return None
    raw = text.strip().upper().replace("-", "_")
    if raw.isdigit():
        setting = BandwidthSetting(BandwidthMode.CUSTOM, int(raw))
    else:
        mode, sep, value = raw.partition(":")
        try:
            bw_mode = BandwidthMode(mode)
        except ValueError:
            raise InvalidInput("bandwidth", f"unknown bandwidth {text!r} (AUTO, HYPERVISOR_DEFAULT, "
                                            "CUSTOM:MBPS or a number of Mbps)") from None
        if sep and not value.isdigit():
            raise InvalidInput("bandwidth.custom_mbps", f"must be a positive number of Mbps, got {value!r}")
        setting = BandwidthSetting(bw_mode, int(value) if sep else None)
    return {"mode": setting.mode.value, "custom_mbps": setting.custom_mbps}


def _tristate(value: str | None) -> Any:
    """on/off/inherit -> True/False/None; absent -> the marker that leaves it unchanged."""
    if value is None:
        return _UNSET
    return {"on": True, "off": False, INHERIT: None}[value.lower()]


_UNSET = object()
TRISTATE = click.Choice(["on", "off", INHERIT], case_sensitive=False)


def _parallel_text(p: dict | None) -> str:
    if not p:
        return "inherit"
    return f"CUSTOM:{p['connections']}" if p["mode"] == "CUSTOM" else p["mode"]


def _bandwidth_text(b: dict) -> str:
    return f"CUSTOM:{b['custom_mbps']} Mbps" if b["mode"] == "CUSTOM" else b["mode"]


def _onoff(v: Any) -> str:
    return "inherit" if v is None else ("on" if v else "off")


def _read_data_file(path: str, field: str) -> Any:
    import yaml

    p = pathlib.Path(path)
    try:
        text = sys_stdin_or_file(p)
    except OSError as exc:
        raise InvalidInput(field, f"cannot read {path}: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(field, f"{path} is not valid YAML/JSON: {exc}") from None


def sys_stdin_or_file(p: pathlib.Path) -> str:
    if str(p) == "-":
        return click.get_text_stream("stdin").read()
    return p.read_text()


# ------------------------------------------------------------------ clusters

def _cluster_options(f: Callable) -> Callable:
    opts = [
        click.option("--description", default=None),
        click.option("--policy", default=None, help="Migration policy name or id."),
        click.option("--parallel", default=None, help="AUTO, AUTO_PARALLEL, DISABLED, CUSTOM:N or N (2..255)."),
        click.option("--encrypted/--no-encrypted", default=None, help="Encrypt migrations (TLS)."),
        click.option("--bandwidth", default=None, help="AUTO, HYPERVISOR_DEFAULT, CUSTOM:MBPS or MBPS."),
        click.option("--auto-converge/--no-auto-converge", default=None),
        click.option("--compressed/--no-compressed", default=None),
        click.option("--resilience", default=None, help="MIGRATE, MIGRATE_HIGHLY_AVAILABLE or DO_NOT_MIGRATE."),
        click.option("--parallel-supported/--no-parallel-supported", default=None,
                     help="Whether the cluster supports parallel (and so zero-copy) migrations."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _cluster_body(description, policy, parallel, encrypted, bandwidth, auto_converge, compressed,
                  resilience, parallel_supported) -> dict:
    body = {"description": description, "policy": policy, "parallel": parse_parallel(parallel),
            "encrypted": encrypted, "bandwidth": parse_bandwidth(bandwidth), "auto_converge": auto_converge,
            "compressed": compressed, "resilience": resilience, "parallel_supported": parallel_supported}
    return {k: v for k, v in body.items() if v is not None}


def _render_cluster(c: dict) -> None:
    _fields(f"cluster {c['name']}", [
        ("description", c["description"] or ""),
        ("policy", c["policy"]["name"] or c["policy"]["id"]),
        ("parallel", _parallel_text(c["parallel"])),
        ("encrypted", _onoff(c["encrypted"])),
        ("bandwidth", _bandwidth_text(c["bandwidth"])),
        ("auto_converge", _onoff(c["auto_converge"])),
        ("compressed", _onoff(c["compressed"])),
        ("resilience", c["resilience"]),
        ("parallel_supported", "yes" if c["parallel_supported"] else "no"),
    ])


def _render_clusters(cs: list[dict]) -> None:
    _table("clusters", ["name", "policy", "parallel", "encrypted", "bandwidth", "parallel supported"], [
        [c["name"], c["policy"]["name"], _parallel_text(c["parallel"]), _onoff(c["encrypted"]),
         _bandwidth_text(c["bandwidth"]), "yes" if c["parallel_supported"] else "no"] for c in cs])


@click.group("cluster")
def cluster_group() -> None:
    """Clusters and their migration options."""


@cluster_group.command("add")
@click.argument("name")
@_cluster_options
@json_option
def cluster_add(name, as_json, **opts):
    """Add a cluster (unset options take oVirt's defaults)."""
    body = {"name": name, **_cluster_body(**opts)}
    _emit(_client().post("/api/clusters", body), as_json, _render_cluster)


@cluster_group.command("set")
@click.argument("name")
@_cluster_options
@json_option
def cluster_set(name, as_json, **opts):
    """Change a cluster's options (only those given)."""
    body = _cluster_body(**opts)
    if not body:
        raise InvalidInput("options", "nothing to change: give at least one option (see --help)")
    _emit(_client().patch(f"/api/clusters/{name}", body), as_json, _render_cluster)


@cluster_group.command("list")
@json_option
def cluster_list(as_json):
    """List clusters."""
    _emit(_client().get("/api/clusters"), as_json, _render_clusters)


@cluster_group.command("show")
@click.argument("name")
@json_option
def cluster_show(name, as_json):
    """Show a cluster's migration options."""
    _emit(_client().get(f"/api/clusters/{name}"), as_json, _render_cluster)


@cluster_group.command("remove")
@click.argument("name")
def cluster_remove(name):
    """Remove an empty cluster."""
    _client().delete(f"/api/clusters/{name}")
    click.echo(f"cluster {name} removed")


# ------------------------------------------------------------------ hosts

def _render_host(h: dict) -> None:
    _fields(f"host {h['name']}", [
        ("cluster", h["cluster"]), ("status", h["status"]), ("address", h["address"]),
        ("agent_url", h["agent_url"]), ("migration_address", h["migration_address"]),
        ("migration_network", "up" if h["migration_network_up"] else "down"),
        ("link_speed_mbps", h["link_speed_mbps"]), ("zerocopy", h["zerocopy"]),
        ("capabilities_at", h["capabilities_at"]),
    ])


def _render_hosts(hs: list[dict]) -> None:
    _table("hosts", ["name", "cluster", "status", "address", "migration address", "link Mbps", "zero-copy"], [
        [h["name"], h["cluster"], h["status"], h["address"], h["migration_address"], h["link_speed_mbps"],
         h["zerocopy"]] for h in hs])


def _capabilities(text: str | None) -> Any:
    if text is None:
        return _UNSET
    if text.startswith("@"):
        return _read_data_file(text[1:], "capabilities")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidInput("capabilities", f"is not JSON ({exc}); give JSON or @FILE") from None


@click.group("host")
def host_group() -> None:
    """Hosts (each runs a Ferry agent)."""


@host_group.command("add")
@click.argument("name")
@click.option("--cluster", required=True)
@click.option("--address", required=True, help="The agent's address (management network).")
@click.option("--agent-url", default=None, help="Default https://ADDRESS:54321/ (mutual TLS; http:// only for agents in --dev mode).")  # noqa: E501
@click.option("--migration-address", default=None, help="Address on the migration network.")
@click.option("--link-speed", "link_speed_mbps", type=int, default=None, help="Migration link speed, Mbps.")
@click.option("--status", default=None, help="UNKNOWN (default), UP, DOWN, MAINTENANCE.")
@json_option
def host_add(name, cluster, address, agent_url, migration_address, link_speed_mbps, status, as_json):
    """Add a host by its agent's address."""
    body = {"name": name, "cluster": cluster, "address": address, "agent_url": agent_url,
            "migration_address": migration_address, "link_speed_mbps": link_speed_mbps, "status": status}
    body = {k: v for k, v in body.items() if v is not None}
    _emit(_client().post("/api/hosts", body), as_json, _render_host)


@host_group.command("set")
@click.argument("name")
@click.option("--cluster", default=None)
@click.option("--address", default=None)
@click.option("--agent-url", default=None)
@click.option("--migration-address", default=None, help="'none' to clear.")
@click.option("--migration-network", type=click.Choice(["up", "down"]), default=None)
@click.option("--link-speed", default=None, help="Mbps, or 'unknown'.")
@click.option("--status", default=None)
@click.option("--capabilities", default=None, help="JSON, or @FILE (YAML/JSON): the agent's capabilities.")
@json_option
def host_set(name, cluster, address, agent_url, migration_address, migration_network, link_speed, status,
             capabilities, as_json):
    """Change a host (only the options given)."""
    body: dict[str, Any] = {k: v for k, v in {"cluster": cluster, "address": address, "agent_url": agent_url,
                                              "status": status}.items() if v is not None}
    if migration_address is not None:
        body["migration_address"] = None if migration_address.lower() == "none" else migration_address
    if migration_network is not None:
        body["migration_network_up"] = migration_network == "up"
    if link_speed is not None:
        if link_speed.lower() == "unknown":
            body["link_speed_mbps"] = None
        elif link_speed.isdigit():
            body["link_speed_mbps"] = int(link_speed)
        else:
            raise InvalidInput("link_speed_mbps", f"must be a number of Mbps or 'unknown', got {link_speed!r}")
    caps = _capabilities(capabilities)
    if caps is not _UNSET:
        body["capabilities"] = caps
    if not body:
        raise InvalidInput("options", "nothing to change: give at least one option (see --help)")
    _emit(_client().patch(f"/api/hosts/{name}", body), as_json, _render_host)


@host_group.command("list")
@click.option("--cluster", default=None)
@json_option
def host_list(cluster, as_json):
    """List hosts."""
    _emit(_client().get("/api/hosts", params={"cluster": cluster}), as_json, _render_hosts)


@host_group.command("show")
@click.argument("name")
@json_option
def host_show(name, as_json):
    """Show a host."""
    _emit(_client().get(f"/api/hosts/{name}"), as_json, _render_host)


@host_group.command("refresh")
@click.argument("name")
@json_option
def host_refresh(name, as_json):
    """Ask the host's agent now: status, capabilities, free memory, VMs (the engine also does
    this by itself every few seconds, and within a second of `host add`)."""
    _emit(_client().post(f"/api/hosts/{name}/refresh", {}), as_json, _render_host)


@host_group.command("remove")
@click.argument("name")
def host_remove(name):
    """Remove a host that runs no VMs."""
    _client().delete(f"/api/hosts/{name}")
    click.echo(f"host {name} removed")


# ------------------------------------------------------------------ VMs

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
        v = _tristate(value)
        if v is not _UNSET:
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
    _fields(f"VM {v['name']}", [
        ("uuid", v["uuid"]), ("cluster", v["cluster"]), ("host", v["host"]), ("status", v["status"]),
        ("memory_mib", v["memory_mib"]), ("vcpus", v["vcpus"]), ("kernel", v["spec"].get("kernel")),
        ("policy", (o["policy"] or {}).get("name") or (o["policy"] or {}).get("id") or "inherit"),
        ("parallel", _parallel_text(o["parallel"])), ("encrypted", _onoff(o["encrypted"])),
        ("auto_converge", _onoff(o["auto_converge"])), ("compressed", _onoff(o["compressed"])),
        ("downtime_ms", o["downtime_ms"] if o["downtime_ms"] is not None else "inherit"),
    ])


def _render_vms(vs: list[dict]) -> None:
    _table("VMs", ["name", "cluster", "host", "status", "memory MiB", "vCPUs", "policy"], [
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
        body = {**workload_vm_spec(name, memory_mib, vcpus or 1, wl), "cluster": cluster, "workload": wl}
        if uuid:
            body["uuid"] = uuid
        if accel:
            body["accel"] = accel
    else:
        if not kernel:
            raise InvalidInput("kernel", "is required (or --workload for a lab workload guest)")
        body = {"name": name, "cluster": cluster, "memory_mib": memory_mib, "vcpus": vcpus or 1,
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
    _emit(_client().post("/api/vms", body), as_json, _render_vm)


@vm_group.command("create")
@click.argument("name")
@_vm_spec_options
@click.option("--on", "on_host", default=None, help="Host to start it on (default: the engine picks).")
@_override_options
@json_option
def vm_create(name, cluster, memory_mib, vcpus, kernel, initrd, cmdline, uuid, accel, workload, on_host, as_json,
              **overrides):
    """Add a VM to the inventory and start it on a host through its agent."""
    client = _client()
    body = _vm_body(name, cluster, memory_mib, vcpus, kernel, initrd, cmdline, uuid, accel, workload, overrides)
    client.post("/api/vms", body)
    client.post(f"/api/vms/{name}/start", {"host": on_host} if on_host else {})
    _emit(client.get(f"/api/vms/{name}"), as_json, _render_vm)


@vm_group.command("start")
@click.argument("name")
@click.option("--on", "on_host", default=None, help="Host to start it on (default: the engine picks).")
@json_option
def vm_start(name, on_host, as_json):
    """Start a VM that is down, on a host through its agent (VM.create)."""
    client = _client()
    client.post(f"/api/vms/{name}/start", {"host": on_host} if on_host else {})
    _emit(client.get(f"/api/vms/{name}"), as_json, _render_vm)


@vm_group.command("stop")
@click.argument("name")
@json_option
def vm_stop(name, as_json):
    """Stop (destroy) a running VM on its host."""
    client = _client()
    client.post(f"/api/vms/{name}/stop", {})
    _emit(client.get(f"/api/vms/{name}"), as_json, _render_vm)


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
        raise InvalidInput("options", "nothing to change: give at least one option (see --help)")
    _emit(_client().patch(f"/api/vms/{name}", body), as_json, _render_vm)


@vm_group.command("list")
@click.option("--cluster", default=None)
@click.option("--host", default=None)
@json_option
def vm_list(cluster, host, as_json):
    """List VMs."""
    _emit(_client().get("/api/vms", params={"cluster": cluster, "host": host}), as_json, _render_vms)


@vm_group.command("show")
@click.argument("name")
@json_option
def vm_show(name, as_json):
    """Show a VM and its overrides."""
    _emit(_client().get(f"/api/vms/{name}"), as_json, _render_vm)


@vm_group.command("remove")
@click.argument("name")
def vm_remove(name):
    """Remove a VM from the inventory (it must not be migrating)."""
    _client().delete(f"/api/vms/{name}")
    click.echo(f"VM {name} removed")


# ------------------------------------------------------------------ policies

def _schedule_text(p: dict) -> str:
    if p.get("legacy"):
        return "(the agent's own downtime steps)"
    parts = [f"init {a['name']} {' '.join(map(str, a['params']))}".strip() for a in p.get("init", [])]
    parts += [f"{s['limit']}: {s['action']['name']} {' '.join(map(str, s['action']['params']))}".strip()
              for s in p.get("stalling", [])]
    parts += [f"last {a['name']} {' '.join(map(str, a['params']))}".strip() for a in p.get("last_items", [])]
    return ", ".join(parts) or "(none)"


def _render_policy(p: dict) -> None:
    _fields(f"policy {p['name']}", [
        ("id", p["id"]), ("built-in", "yes" if p["builtin"] else "no"), ("description", p["description"]),
        ("max_migrations", p["max_migrations"]), ("auto_converge", _onoff(p["auto_converge"])),
        ("compression", _onoff(p["compression"])), ("guest_events", _onoff(p["guest_events"])),
        ("zerocopy", _onoff(p["zerocopy"])), ("schedule", _schedule_text(p)),
    ])


def _render_policies(ps: list[dict]) -> None:
    _table("migration policies", ["name", "id", "built-in", "max migrations", "zero-copy", "auto-converge"], [
        [p["name"], p["id"], "yes" if p["builtin"] else "no", p["max_migrations"], _onoff(p["zerocopy"]),
         _onoff(p["auto_converge"])] for p in ps])


@click.group("policy")
def policy_group() -> None:
    """Migration policies: the built-ins (read-only) and custom ones."""


@policy_group.command("list")
@json_option
def policy_list(as_json):
    """List policies, built-ins first."""
    _emit(_client().get("/api/policies"), as_json, _render_policies)


@policy_group.command("show")
@click.argument("ref")
@json_option
def policy_show(ref, as_json):
    """Show a policy (by name or id)."""
    _emit(_client().get(f"/api/policies/{ref}"), as_json, _render_policy)


def _policy_file(path: str, name: str | None) -> dict:
    data = _read_data_file(path, "file")
    if not isinstance(data, dict):
        raise InvalidInput("file", f"{path} must hold one policy object (name, max_migrations, init, "
                                   "stalling, last_items, ...)")
    if name is not None:
        data["name"] = name
    return data


@policy_group.command("add")
@click.argument("file")
@click.option("--name", default=None, help="Use this name instead of the file's.")
@json_option
def policy_add(file, name, as_json):
    """Add a custom policy from a YAML/JSON FILE ('-' = stdin)."""
    _emit(_client().post("/api/policies", _policy_file(file, name)), as_json, _render_policy)


@policy_group.command("set")
@click.argument("ref")
@click.argument("file")
@json_option
def policy_set(ref, file, as_json):
    """Replace a custom policy's contents with a YAML/JSON FILE (its id stays)."""
    _emit(_client().put(f"/api/policies/{ref}", _policy_file(file, None)), as_json, _render_policy)


@policy_group.command("remove")
@click.argument("ref")
def policy_remove(ref):
    """Remove a custom policy that nothing uses."""
    _client().delete(f"/api/policies/{ref}")
    click.echo(f"policy {ref} removed")


def register(group: click.Group) -> None:
    for g in (cluster_group, host_group, vm_group, policy_group):
        group.add_command(g)
