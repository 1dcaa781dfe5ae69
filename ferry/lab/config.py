"""libvirtd.conf and qemu.conf for one lab host (pure text generation).

Each host's libvirtd listens on its own loopback address, without TLS or auth until the
security work lands, and runs QEMU as root without cgroups, namespaces, security drivers or
virtlogd: the lab runs without systemd/D-Bus and inside a container-like sandbox.
"""
from __future__ import annotations

from ferry.lab.plan import HostPlan


def _q(value: str) -> str:
    if '"' in value or "\\" in value or "\n" in value:
        raise ValueError(f"cannot quote {value!r} for a libvirt config file")
    return f'"{value}"'


def libvirtd_conf(host: HostPlan) -> str:
    """libvirtd.conf: TCP listener on the host's address, its own host UUID, file logging."""
    return "\n".join([
        "# Written by ferry.lab; regenerated on every `ferry lab up`.",
        "listen_tls = 0",
        "listen_tcp = 1",
        f"listen_addr = {_q(host.address)}",
        'auth_tcp = "none"',
        'auth_unix_rw = "none"',
        f"host_uuid = {_q(host.host_uuid)}",
        # Migration capability/parameter decisions are logged at debug level; keep those.
        'log_filters = "1:qemu.qemu_migration_params 1:qemu.qemu_migration 3:*"',
        'log_outputs = "1:file:/var/log/libvirt/libvirtd.log"',
        "",
    ])


def qemu_conf(host: HostPlan) -> str:
    """qemu.conf: root QEMU with no cgroups/namespaces/security driver; migration on its address."""
    return "\n".join([
        "# Written by ferry.lab; regenerated on every `ferry lab up`.",
        'user = "root"',
        'group = "root"',
        "dynamic_ownership = 0",
        'security_driver = "none"',
        # No cgroups: this also makes the zero-copy memtune workaround safe (ferry.lab.memlock).
        "cgroup_controllers = [ ]",
        "namespaces = [ ]",
        'stdio_handler = "file"',
        f"migration_address = {_q(host.address)}",
        f"migration_host = {_q(host.address)}",
        "",
    ])
