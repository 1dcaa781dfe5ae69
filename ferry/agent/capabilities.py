"""Can this host really send a zero-copy migration? Checked, not assumed.

`evaluate_zerocopy(facts)` is pure: each requirement becomes a check with pass/fail and the
reason, and what makes zero-copy fail at run time becomes a warning. `probe_zerocopy_facts`
gathers the facts at the edge (binding, libvirt daemon, the QEMU binary libvirt uses, the
kernel, limits). `zerocopy_migrations` is true only when every required check passed.
"""
from __future__ import annotations

import json
import select
import socket
import subprocess
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

MIN_LIBVIRT_VERSION = 8_005_000        # libvirt 8.5.0 added VIR_MIGRATE_ZEROCOPY
ZEROCOPY_QEMU_CAPABILITY = "zero-copy-send"
SO_ZEROCOPY = getattr(socket, "SO_ZEROCOPY", 60)  # Linux value; older Pythons lack the name
# Kernels before 5.x shipped 20 KiB; MSG_ZEROCOPY completion notifications are charged to it,
# and with several multifd channels a small value ends in ENOBUFS.
MIN_OPTMEM_MAX = 65536

PASS, FAIL, WARN = "pass", "fail", "warn"


@dataclass(frozen=True)
class ZerocopyFacts:
    binding_has_flag: bool
    libvirt_version: int | None             # the daemon's, libvirt's number form (11003000)
    qemu_migration_capabilities: tuple[str, ...] | None  # None: could not be probed
    qemu_probe_error: str | None = None
    msg_zerocopy: bool | None = None
    msg_zerocopy_error: str | None = None
    memlock_hard_limit: int | None = None   # bytes, None = unlimited
    can_raise_memlock: bool = True          # CAP_SYS_RESOURCE
    optmem_max: int | None = None
    vms_with_hard_limit: tuple[tuple[str, int], ...] = field(default=())  # (name, KiB)


def version_text(number: int | None) -> str:
    if not number:
        return "unknown"
    return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"


def evaluate_zerocopy(f: ZerocopyFacts) -> tuple[bool, list[dict]]:
    """-> (zerocopy_migrations, checks); each check {"check", "result", "reason"}."""
    checks: list[dict] = []

    def add(check: str, result: str, reason: str) -> None:
        checks.append({"check": check, "result": result, "reason": reason})

    add("libvirt_binding", PASS if f.binding_has_flag else FAIL,
        "libvirt-python has VIR_MIGRATE_ZEROCOPY" if f.binding_has_flag
        else "libvirt-python lacks VIR_MIGRATE_ZEROCOPY (needs a binding from libvirt 8.5 or later)")
    if f.libvirt_version is not None and f.libvirt_version >= MIN_LIBVIRT_VERSION:
        add("libvirt_daemon", PASS, f"libvirt {version_text(f.libvirt_version)} >= 8.5.0")
    else:
        add("libvirt_daemon", FAIL, f"libvirt {version_text(f.libvirt_version)} is older than 8.5.0")
    if f.qemu_migration_capabilities is None:
        add("qemu_zero_copy_send", FAIL, f"could not probe QEMU's migration capabilities: {f.qemu_probe_error}")
    elif ZEROCOPY_QEMU_CAPABILITY in f.qemu_migration_capabilities:
        add("qemu_zero_copy_send", PASS, "QEMU offers the zero-copy-send migration capability")
    else:
        add("qemu_zero_copy_send", FAIL, "QEMU does not offer the zero-copy-send migration capability (needs 7.1+)")
    if f.msg_zerocopy:
        add("kernel_msg_zerocopy", PASS, "the kernel accepts SO_ZEROCOPY on TCP sockets (MSG_ZEROCOPY)")
    else:
        add("kernel_msg_zerocopy", FAIL, f"the kernel refuses SO_ZEROCOPY: {f.msg_zerocopy_error or 'unknown'}")
    supported = all(c["result"] == PASS for c in checks)

    if not f.can_raise_memlock and f.memlock_hard_limit is not None:
        add("memlock", WARN,
            f"libvirt cannot raise RLIMIT_MEMLOCK (no CAP_SYS_RESOURCE, hard limit "
            f"{f.memlock_hard_limit // 1024} KiB): zero-copy works only for VMs whose memtune "
            f"hard_limit is at most that, else QEMU fails with \"Process can't lock enough memory\"")
    else:
        add("memlock", PASS, "libvirt can raise RLIMIT_MEMLOCK to cover guest RAM during the migration")
    if f.optmem_max is not None and f.optmem_max < MIN_OPTMEM_MAX:
        add("optmem_max", WARN, f"net.core.optmem_max is {f.optmem_max} (< {MIN_OPTMEM_MAX}): zero-copy "
                                f"sends may fail with ENOBUFS")
    elif f.optmem_max is not None:
        add("optmem_max", PASS, f"net.core.optmem_max is {f.optmem_max}")
    for name, kib in f.vms_with_hard_limit:
        add(f"memtune_hard_limit:{name}", WARN,
            f"VM {name} has a hand-set memtune hard_limit of {kib} KiB: libvirt will not raise the lock "
            f"limit for it, so zero-copy pins pages against that limit")
    return supported, checks


# ---- probing (edge) ------------------------------------------------------------------------

def probe_zerocopy_facts(conn, lv) -> ZerocopyFacts:
    """The host's static facts: binding, daemon, the QEMU binary libvirt uses, kernel, limits."""
    from ferry.common import memlock

    qemu_caps, qemu_error = None, None
    try:
        emulator = emulator_from_domain_capabilities(conn.getDomainCapabilities(None, None, None, None, 0))
        qemu_caps = probe_qemu_migration_capabilities(emulator or "/usr/bin/qemu-system-x86_64")
    except Exception as exc:  # noqa: BLE001 - reported as a failed check
        qemu_error = str(exc)
    zc_ok, zc_error = kernel_msg_zerocopy()
    return ZerocopyFacts(
        binding_has_flag=hasattr(lv, "VIR_MIGRATE_ZEROCOPY"),
        libvirt_version=conn.getLibVersion(),
        qemu_migration_capabilities=qemu_caps, qemu_probe_error=qemu_error,
        msg_zerocopy=zc_ok, msg_zerocopy_error=zc_error,
        memlock_hard_limit=memlock.memlock_hard_limit(), can_raise_memlock=memlock.can_raise_memlock(),
        optmem_max=read_optmem_max())


def probe_qemu_migration_capabilities(emulator: str, timeout: float = 10.0) -> tuple[str, ...]:
    """Starts the QEMU binary with no machine and asks it over QMP for its migration capabilities."""
    proc = subprocess.Popen([emulator, "-machine", "none", "-nodefaults", "-nographic", "-display", "none",
                             "-qmp", "stdio"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + timeout

        def read_json():
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not select.select([proc.stdout], [], [], remaining)[0]:
                    raise TimeoutError(f"{emulator} did not answer on QMP within {timeout:.0f} s")
                line = proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"{emulator} exited before answering on QMP")
                msg = json.loads(line)
                if "event" not in msg:
                    return msg

        read_json()  # greeting
        for command in ("qmp_capabilities", "query-migrate-capabilities"):
            proc.stdin.write(json.dumps({"execute": command}) + "\n")
            proc.stdin.flush()
            answer = read_json()
            if "error" in answer:
                raise RuntimeError(f"{command}: {answer['error'].get('desc')}")
        return tuple(c["capability"] for c in answer["return"])
    finally:
        try:
            proc.stdin.write(json.dumps({"execute": "quit"}) + "\n")
            proc.stdin.flush()
        except OSError:
            pass
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def emulator_from_domain_capabilities(xml: str) -> str | None:
    node = ET.fromstring(xml).find("path")
    return node.text.strip() if node is not None and node.text else None


def kernel_msg_zerocopy() -> tuple[bool, str | None]:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, SO_ZEROCOPY, 1)
        return True, None
    except OSError as exc:
        return False, str(exc)


def read_optmem_max() -> int | None:
    try:
        with open("/proc/sys/net/core/optmem_max") as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


def hard_limit_kib(domain_xml: str) -> int | None:
    """A domain's hand-set <memtune><hard_limit> in KiB, if any."""
    node = ET.fromstring(domain_xml).find("memtune/hard_limit")
    if node is None or not (node.text or "").strip().isdigit():
        return None
    value = int(node.text.strip())
    unit = (node.get("unit") or "KiB").lower()
    scale = {"b": 1 / 1024, "bytes": 1 / 1024, "k": 1, "kib": 1, "m": 1024, "mib": 1024, "g": 1 << 20, "gib": 1 << 20}
    return int(value * scale.get(unit, 1))
