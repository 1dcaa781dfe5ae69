"""Cutting one lab host off the network and restoring it, with nftables.

The lab owns one nftables table per lab (`inet ferry_lab<L>`), holding a set of cut-off host
addresses and an input-hook rule that drops every packet between a cut-off address and any
other address. Dropping at input (not output) makes the cut look like a real network
failure: senders see timeouts, not immediate errors. Traffic of a host with itself (its agent
to its own libvirtd) still flows, as on a real host whose cable was pulled. `nft` works in
this kernel (checked at lab up); the table is removed at lab down.
"""
from __future__ import annotations

import json
import subprocess

from ferry.common.errors import OperationFailed


def table_script(table: str, cut_addresses: list[str] = ()) -> str:
    """nft script that atomically replaces the lab's table with rules cutting these addresses.

    nftables cannot compare two packet fields with each other, so each cut address gets its
    own pair of rules; the `cut` set mirrors the list so the state can be read back.
    """
    addrs = sorted(set(cut_addresses))
    lines = [
        f"table inet {table}",
        f"delete table inet {table}",
        f"table inet {table} {{",
        "  set cut { type ipv4_addr; }",
        "  chain input {",
        "    type filter hook input priority -10; policy accept;",
    ]
    for a in addrs:
        lines.append(f"    ip saddr {a} ip daddr != {a} drop")
        lines.append(f"    ip daddr {a} ip saddr != {a} drop")
    lines += ["  }", "}"]
    if addrs:
        lines.append(f"add element inet {table} cut {{ {', '.join(addrs)} }}")
    return "\n".join(lines) + "\n"


def _nft(args: list[str], script: str | None = None) -> str:
    proc = subprocess.run(["nft", *args], input=script, capture_output=True, text=True)
    if proc.returncode != 0:
        raise OperationFailed(f"nft {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def create_table(table: str) -> None:
    _nft(["-f", "-"], table_script(table))


def delete_table(table: str) -> None:
    proc = subprocess.run(["nft", "delete", "table", "inet", table], capture_output=True, text=True)
    if proc.returncode != 0 and "No such file" not in proc.stderr:
        raise OperationFailed(f"nft delete table inet {table} failed: {proc.stderr.strip()}")


def cut(table: str, address: str) -> None:
    """Cut `address` off (idempotent)."""
    _nft(["-f", "-"], table_script(table, [*cut_addresses(table), address]))


def restore(table: str, address: str) -> None:
    """Let `address` talk again (idempotent)."""
    _nft(["-f", "-"], table_script(table, [a for a in cut_addresses(table) if a != address]))


def cut_addresses(table: str) -> list[str]:
    """Addresses currently cut off (empty if the table does not exist)."""
    proc = subprocess.run(["nft", "-j", "list", "set", "inet", table, "cut"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return []
    out: list[str] = []
    for item in json.loads(proc.stdout).get("nftables", []):
        elems = item.get("set", {}).get("elem", [])
        out.extend(e for e in elems if isinstance(e, str))
    return sorted(out)
