"""`ferry cluster ...`: clusters and their migration options (policy, parallel, bandwidth, ...)."""
from __future__ import annotations

from collections.abc import Callable

import click

from ferry.cli.inventory.common import (
    bandwidth_text,
    emit,
    engine_client,
    fields,
    json_option,
    list_show_remove,
    nothing_to_change,
    onoff,
    parallel_text,
    parse_bandwidth,
    parse_parallel,
    table,
)


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
    fields(f"cluster {c['name']}", [
        ("description", c["description"] or ""),
        ("policy", c["policy"]["name"] or c["policy"]["id"]),
        ("parallel", parallel_text(c["parallel"])),
        ("encrypted", onoff(c["encrypted"])),
        ("bandwidth", bandwidth_text(c["bandwidth"])),
        ("auto_converge", onoff(c["auto_converge"])),
        ("compressed", onoff(c["compressed"])),
        ("resilience", c["resilience"]),
        ("parallel_supported", "yes" if c["parallel_supported"] else "no"),
    ])


def _render_clusters(cs: list[dict]) -> None:
    table("clusters", ["name", "policy", "parallel", "encrypted", "bandwidth", "parallel supported"], [
        [c["name"], c["policy"]["name"], parallel_text(c["parallel"]), onoff(c["encrypted"]),
         bandwidth_text(c["bandwidth"]), "yes" if c["parallel_supported"] else "no"] for c in cs])


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
    emit(engine_client().post("/api/clusters", body), as_json, _render_cluster)


@cluster_group.command("set")
@click.argument("name")
@_cluster_options
@json_option
def cluster_set(name, as_json, **opts):
    """Change a cluster's options (only those given)."""
    body = _cluster_body(**opts)
    if not body:
        raise nothing_to_change()
    emit(engine_client().patch(f"/api/clusters/{name}", body), as_json, _render_cluster)


list_show_remove(cluster_group, noun="cluster", path="/api/clusters", render_one=_render_cluster,
                 render_many=_render_clusters, list_help="List clusters.",
                 show_help="Show a cluster's migration options.", remove_help="Remove an empty cluster.")
