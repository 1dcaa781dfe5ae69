"""What the engine lets into a VM's spec and workload before storing it.

libvirtd runs as root on every host, so a VM's emulator, kernel, initrd and console log are
files root runs, reads or writes. The agents refuse anything outside their own allowlists
(ferry.agent.vm_checks); the engine refuses the same things earlier, before they are stored, so
an admin token cannot park a bad spec in the inventory and nothing invalid is ever shown back.
These rules mirror the agent's (the engine never imports the agent):

- emulator: one of the engine's allowlist (default the distribution's qemu-system binary), or
  its plain file name ("qemu-system-x86_64"), which is stored as the allowlisted path;
- kernel, initrd: a file under the images directories (default /var/lib/ferry/images and the
  lab's /var/lib/ferry/lab/images), or a plain file name, stored as the path in the first one;
- console log: a file under the console log directory (default /var/log/libvirt/qemu), or a
  plain file name there;
- every path component [A-Za-z0-9._-], no "..", at most 255 characters, the path at most 1024;
- memory 16 MiB..16 TiB, vCPUs 1..512, the memtune hard limit 1 KiB..32 TiB, the command line
  one line of at most 4096 characters, the machine type a safe name;
- a workload (lab guests): fill 1..memory MiB, dirty 0..1,000,000 MiB/s, spot 0..1,000,000 pages.

The allowlists are the engine's configuration: FERRY_ENGINE_EMULATORS, FERRY_ENGINE_IMAGES_DIRS
(':'-separated) and FERRY_ENGINE_CONSOLE_LOG_DIR replace the defaults (`VmPathRules.from_env`).
Paths are checked as text (the files are on the hosts, not on the engine's machine).
"""
from __future__ import annotations

import os
import platform
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ferry.common.errors import InvalidInput
from ferry.engine.validation import check_int, check_name, check_text, show

SAFE_COMPONENT = re.compile(r"^[A-Za-z0-9._-]+$")
MAX_COMPONENT = 255
MAX_PATH = 1024
MAX_CMDLINE = 4096
MIN_MEMORY_MIB = 16
MAX_MEMORY_MIB = 16 * 1024 * 1024          # 16 TiB: the largest x86 hosts
MAX_VCPUS = 512
MAX_HARD_LIMIT_KIB = 2 * MAX_MEMORY_MIB * 1024  # guest memory plus QEMU's overhead
MAX_DIRTY_MIB_S = 1_000_000
MAX_SPOT_PAGES = 1_000_000
DEFAULT_IMAGES_DIRS = ("/var/lib/ferry/images", "/var/lib/ferry/lab/images")
DEFAULT_CONSOLE_LOG_DIR = "/var/log/libvirt/qemu"
WORKLOAD_FIELDS = {"fill_mib": "fill", "dirty_mib_s": "dirty", "spot_pages": "spot"}


def _env_list(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(p for p in os.environ.get(name, "").split(":") if p) or default


@dataclass(frozen=True)
class VmPathRules:
    """The engine's own allowlists for the files a VM's spec names."""

    emulators: tuple[str, ...]
    images_dirs: tuple[str, ...]
    console_log_dir: str

    @classmethod
    def from_env(cls) -> VmPathRules:
        return cls(
            emulators=_env_list("FERRY_ENGINE_EMULATORS", (f"/usr/bin/qemu-system-{platform.machine() or 'x86_64'}",)),
            images_dirs=_env_list("FERRY_ENGINE_IMAGES_DIRS", DEFAULT_IMAGES_DIRS),
            console_log_dir=os.environ.get("FERRY_ENGINE_CONSOLE_LOG_DIR") or DEFAULT_CONSOLE_LOG_DIR,
        )


def _components_ok(field: str, value: str) -> None:
    for part in value.strip("/").split("/"):
        if not part or part in (".", "..") or not SAFE_COMPONENT.match(part) or len(part) > MAX_COMPONENT:
            raise InvalidInput(field, f"{show(value)}: path components must be letters, digits, '.', '_', '-' "
                                      f"of at most {MAX_COMPONENT} characters (no '..', no empty component)")


def check_file_under(field: str, value: Any, dirs: tuple[str, ...], what: str) -> str:
    """A plain file name (stored as the path in the first of `dirs`) or an absolute path of
    safe components under one of `dirs`."""
    if not isinstance(value, str) or not value or len(value) > MAX_PATH:
        raise InvalidInput(field, f"must be a file name or an absolute path of at most {MAX_PATH} characters, "
                                  f"got {show(value)}")
    _components_ok(field, value)
    if "/" not in value:
        if not dirs:
            raise InvalidInput(field, f"{show(value)}: no {what} is configured for plain file names")
        return posixpath.join(dirs[0], value)
    if not value.startswith("/"):
        raise InvalidInput(field, f"{show(value)} must be a plain file name or an absolute path")
    for d in dirs:
        if value.startswith(posixpath.normpath(d).rstrip("/") + "/"):
            return value
    raise InvalidInput(field, f"{show(value)} is not under {what} ({', '.join(dirs) or 'none configured'})")


def check_emulator(field: str, value: Any, rules: VmPathRules) -> str:
    """One of the allowlisted emulators, by path or by its plain file name."""
    if isinstance(value, str):
        if value in rules.emulators:
            return value
        if "/" not in value:
            for allowed in rules.emulators:
                if posixpath.basename(allowed) == value:
                    return allowed
    raise InvalidInput(field, f"{show(value)} is not an allowed emulator (allowed: {', '.join(rules.emulators)})")


def check_spec_fields(fields: Mapping[str, Any], rules: VmPathRules, prefix: str = "") -> dict[str, Any]:
    """The VM spec fields given (a create's or a PATCH's), checked; paths normalized (plain
    file names become paths). Fields not given are not checked; VmSpec checks the rest."""
    out = dict(fields)
    for key, value in fields.items():
        field = prefix + key
        if value is None:
            continue
        if key == "name":
            check_name(field, value)
        elif key == "memory_mib":
            check_int(field, value, MIN_MEMORY_MIB, MAX_MEMORY_MIB)
        elif key == "vcpus":
            check_int(field, value, 1, MAX_VCPUS)
        elif key == "memtune_hard_limit_kib":
            check_int(field, value, 1, MAX_HARD_LIMIT_KIB)
        elif key in ("kernel", "initrd"):
            out[key] = check_file_under(field, value, rules.images_dirs, "the images directories")
        elif key == "console_log":
            out[key] = check_file_under(field, value, (rules.console_log_dir,), "the console log directory")
        elif key == "emulator":
            out[key] = check_emulator(field, value, rules)
        elif key == "cmdline":
            check_text(field, value, MAX_CMDLINE, one_line=True)
        elif key in ("machine", "accel"):
            check_name(field, value)
        elif key == "uuid":
            check_text(field, value, 36, one_line=True)
    return out


def check_workload(field: str, value: Any, memory_mib: Any = None) -> dict[str, int] | None:
    """A lab workload guest's figures: {fill_mib, dirty_mib_s, spot_pages}, bounded."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidInput(field, f"must be an object with {', '.join(WORKLOAD_FIELDS)}, got {show(value)}")
    unknown = sorted(k for k in value if k not in WORKLOAD_FIELDS)
    if unknown:
        raise InvalidInput(f"{field}.{show(unknown[0])[1:-1]}", f"unknown workload field "
                                                               f"(known: {', '.join(WORKLOAD_FIELDS)})")
    top = memory_mib if isinstance(memory_mib, int) and not isinstance(memory_mib, bool) else MAX_MEMORY_MIB
    bounds = {"fill_mib": (1, max(1, min(top, MAX_MEMORY_MIB))), "dirty_mib_s": (0, MAX_DIRTY_MIB_S),
              "spot_pages": (0, MAX_SPOT_PAGES)}
    for key, item in value.items():
        check_int(f"{field}.{key}", item, *bounds[key])
    return dict(value)
