"""The lab network: a namespace per host, veth pairs over one bridge, cables pulled and put back.

Why: hosts that share the machine's loopback are not separate machines. Their connections leave
from 127.0.0.1, so no rule on an address can cut one host off without also cutting its agent
off from its own libvirtd, or can stop a migration stream it does not see. With a network
namespace per host, a host's only way out is its eth0, the inner end of a veth pair whose
outer end is a port of the lab's bridge. Pulling that cable (`cut`: the outer end set down,
so eth0 loses carrier) stops everything the host sends or receives over the network, as on a
real host, while the agent keeps reaching its libvirtd locally (the unix socket, inside the
host's namespaces) and the lab reaches it through the same socket from outside.

Addresses come from ferry.lab.plan (198.18.L.0/24). The bridge holds 198.18.L.1 so processes
in the machine's own namespace (engine, tests, CLI) reach every host directly; hosts get no
default route, so nothing they send can leave the lab network. A guard route
(`unreachable 198.18.L.0/24`, metric GUARD_METRIC) is added at up and deliberately kept at
down: while the bridge exists its connected route wins; once it is gone, a stray connection
to a lab address fails at once instead of following the machine's default route.

The command builders are pure (tested as data); `apply` runs them with iproute2.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

from ferry.common.errors import OperationFailed
from ferry.lab.plan import SUBNET_PREFIX_LEN, HostPlan, LabPlan

NETNS_DIR = Path("/run/netns")
GUARD_METRIC = 4242
INNER_IFACE = "eth0"

Cmd = list[str]


def bridge_up_commands(plan: LabPlan) -> list[Cmd]:
    """Create the lab bridge with the machine's address on it, and the guard route."""
    br = plan.bridge
    return [
        ["ip", "route", "replace", "unreachable", plan.subnet, "metric", str(GUARD_METRIC)],
        ["ip", "link", "add", br, "type", "bridge", "forward_delay", "0", "stp_state", "0"],
        ["ip", "addr", "add", f"{plan.bridge_address}/{SUBNET_PREFIX_LEN}", "dev", br],
        ["ip", "link", "set", br, "up"],
    ]


def host_up_commands(plan: LabPlan, host: HostPlan) -> list[Cmd]:
    """Create the host's namespace and its link to the bridge, address on the inner end."""
    ns = host.netns
    return [
        ["ip", "netns", "add", ns],
        ["ip", "-n", ns, "link", "set", "lo", "up"],
        ["ip", "link", "add", host.veth, "type", "veth", "peer", "name", INNER_IFACE, "netns", ns],
        ["ip", "link", "set", host.veth, "master", plan.bridge, "up"],
        ["ip", "-n", ns, "addr", "add", f"{host.address}/{SUBNET_PREFIX_LEN}", "dev", INNER_IFACE],
        ["ip", "-n", ns, "link", "set", INNER_IFACE, "up"],
    ]


def host_down_commands(host: HostPlan) -> list[Cmd]:
    """Remove the host's link (deleting one end deletes both) and its namespace."""
    return [["ip", "link", "del", host.veth], ["ip", "netns", "del", host.netns]]


def bridge_down_commands(plan: LabPlan) -> list[Cmd]:
    return [["ip", "link", "del", plan.bridge]]


def cut_command(host: HostPlan) -> Cmd:
    """Pull the host's cable: its bridge port goes down and eth0 inside loses carrier."""
    return ["ip", "link", "set", host.veth, "down"]


def restore_command(host: HostPlan) -> Cmd:
    return ["ip", "link", "set", host.veth, "up"]


def netns_exec(host: HostPlan, argv: list[str]) -> Cmd:
    """argv run inside the host's network namespace only (files, mounts and pids as outside)."""
    return ["nsenter", f"--net={NETNS_DIR / host.netns}", "--", *argv]


# ---- running them ----------------------------------------------------------------------------
def run(cmd: Cmd, *, ok_if: tuple[str, ...] = ()) -> None:
    """Run one command; failures raise, except those whose error text contains one of `ok_if`."""
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 and not any(t in proc.stderr for t in ok_if):
        raise OperationFailed(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")


_GONE = ("Cannot find device", "No such file", "does not exist", "Cannot remove namespace")


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def netns_exists(host: HostPlan) -> bool:
    return (NETNS_DIR / host.netns).exists()


def ensure_bridge(plan: LabPlan) -> None:
    """The lab bridge (idempotent: a bridge that exists is kept, with its links)."""
    if link_exists(plan.bridge):
        return
    for cmd in bridge_up_commands(plan):
        run(cmd)


def ensure_host(plan: LabPlan, host: HostPlan) -> None:
    """A fresh namespace and link for a host about to start (whatever was left is replaced)."""
    remove_host(host)
    for cmd in host_up_commands(plan, host):
        run(cmd)


def remove_host(host: HostPlan) -> None:
    for cmd in host_down_commands(host):
        run(cmd, ok_if=_GONE)


def remove_bridge(plan: LabPlan) -> None:
    for cmd in bridge_down_commands(plan):
        run(cmd, ok_if=_GONE)


def cut(host: HostPlan) -> None:
    if not link_exists(host.veth):
        raise OperationFailed(f"{host.name} has no link {host.veth} (is the lab up?)")
    run(cut_command(host))


def restore(host: HostPlan) -> None:
    if link_exists(host.veth):
        run(restore_command(host))


def is_cut(host: HostPlan) -> bool:
    """Whether the host's cable is pulled (its bridge port exists and is administratively down)."""
    try:
        flags = int(Path("/sys/class/net", host.veth, "flags").read_text(), 16)
    except (OSError, ValueError):
        return False
    return not flags & 0x1  # IFF_UP
