"""`ferry cluster|host|vm|policy ...`: the engine's inventory from the command line.

Every command talks to the engine's REST API (FERRY_ENGINE_URL), prints a table by default and
the engine's JSON with --json. Bad input exits with code 2 and a message naming the field; the
short forms of settings are checked here before anything is sent (parallel AUTO, AUTO_PARALLEL,
DISABLED, CUSTOM:N or N; bandwidth AUTO, HYPERVISOR_DEFAULT, CUSTOM:MBPS or MBPS).

One module per resource (clusters, hosts, vms, policies); what they share, the list/show/remove
commands included, is in common.
"""
from __future__ import annotations

import click

from ferry.cli.inventory.clusters import cluster_group
from ferry.cli.inventory.hosts import host_group
from ferry.cli.inventory.policies import policy_group
from ferry.cli.inventory.vms import parse_workload, vm_group, workload_vm_spec

__all__ = ["parse_workload", "register", "workload_vm_spec"]


def register(group: click.Group) -> None:
    for g in (cluster_group, host_group, vm_group, policy_group):
        group.add_command(g)
