"""The zero-copy memtune workaround for hosts where libvirt cannot raise RLIMIT_MEMLOCK.

Zero-copy migration sends guest pages with MSG_ZEROCOPY, which needs locked memory: libvirt
raises QEMU's RLIMIT_MEMLOCK to the domain's memtune hard_limit (or to the guest size when
there is none). Raising it needs CAP_SYS_RESOURCE. Where that capability is missing (root in
a container-like sandbox, such as the machines this lab runs on, where the hard limit is
8 MiB), plain `--zerocopy` fails with "cannot limit locked memory of process N to ...:
Operation not permitted". Setting `<memtune><hard_limit>` to exactly the current hard limit
makes libvirt "raise" the limit to what it already is, which succeeds, and QEMU then sends
zero-copy with that lock budget (8 MiB was enough for 4 connections in practice).
This is only safe where qemu.conf disables cgroups, as the lab's does (ferry.lab.config): with the memory
cgroup, hard_limit would also cap the guest's RAM at 8 MiB. On a normal host (with the
capability) no workaround is applied and libvirt raises the limit itself.
"""
from __future__ import annotations

import resource

CAP_SYS_RESOURCE = 24


def has_capability(cap: int, status_text: str) -> bool:
    """Whether the CapEff line of a /proc/<pid>/status text includes capability `cap`."""
    for line in status_text.splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> cap & 1)
    return False


def memtune_workaround_kib(*, has_cap_sys_resource: bool, memlock_hard_bytes: int) -> int | None:
    """The memtune hard_limit (KiB) to put in zero-copy-capable guests, or None if not needed."""
    if has_cap_sys_resource or memlock_hard_bytes == resource.RLIM_INFINITY or memlock_hard_bytes < 0:
        return None
    return max(1, memlock_hard_bytes // 1024)


def can_raise_memlock() -> bool:
    """Whether this process (and so a libvirtd started alike) holds CAP_SYS_RESOURCE."""
    try:
        with open("/proc/self/status") as f:
            return has_capability(CAP_SYS_RESOURCE, f.read())
    except OSError:
        return False


def memlock_hard_limit() -> int | None:
    """This process's hard RLIMIT_MEMLOCK in bytes; None when unlimited."""
    hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)[1]
    return None if hard == resource.RLIM_INFINITY else hard


def detect_memtune_workaround_kib() -> int | None:
    """The workaround for this process's capabilities and limits (libvirtd inherits both)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    return memtune_workaround_kib(has_cap_sys_resource=can_raise_memlock(), memlock_hard_bytes=hard)
