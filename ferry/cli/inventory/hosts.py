"""`ferry host ...`: hosts, each running a Ferry agent (address, migration network, capabilities)."""
from __future__ import annotations

import json
from typing import Any

import click

from ferry.cli.inventory.common import (
    UNSET,
    emit,
    engine_client,
    fields,
    json_option,
    list_show_remove,
    nothing_to_change,
    read_data_file,
    table,
)
from ferry.common.errors import InvalidInput


def _render_host(h: dict) -> None:
    fields(f"host {h['name']}", [
        ("cluster", h["cluster"]), ("status", h["status"]), ("address", h["address"]),
        ("agent_url", h["agent_url"]), ("migration_address", h["migration_address"]),
        ("migration_network", "up" if h["migration_network_up"] else "down"),
        ("link_speed_mbps", h["link_speed_mbps"]), ("zerocopy", h["zerocopy"]),
        ("capabilities_at", h["capabilities_at"]),
    ])


def _render_hosts(hs: list[dict]) -> None:
    table("hosts", ["name", "cluster", "status", "address", "migration address", "link Mbps", "zero-copy"], [
        [h["name"], h["cluster"], h["status"], h["address"], h["migration_address"], h["link_speed_mbps"],
         h["zerocopy"]] for h in hs])


def _capabilities(text: str | None) -> Any:
    if text is None:
        return UNSET
    if text.startswith("@"):
        return read_data_file(text[1:], "capabilities")
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
    emit(engine_client().post("/api/hosts", body), as_json, _render_host)


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
    if caps is not UNSET:
        body["capabilities"] = caps
    if not body:
        raise nothing_to_change()
    emit(engine_client().patch(f"/api/hosts/{name}", body), as_json, _render_host)


@host_group.command("refresh")
@click.argument("name")
@json_option
def host_refresh(name, as_json):
    """Ask the host's agent now: status, capabilities, free memory, VMs (the engine also does
    this by itself every few seconds, and within a second of `host add`)."""
    emit(engine_client().post(f"/api/hosts/{name}/refresh", {}), as_json, _render_host)


list_show_remove(host_group, noun="host", path="/api/hosts", render_one=_render_host, render_many=_render_hosts,
                 list_help="List hosts.", show_help="Show a host.", remove_help="Remove a host that runs no VMs.",
                 filters=("cluster",))
