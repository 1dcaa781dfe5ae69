"""What the agent lets reach libvirt (pure: no libvirt, no I/O; the caller passes `resolve`).

libvirtd runs as root: a domain XML naming `/etc/shadow` as kernel, `/etc/passwd` as console log,
or a script as emulator makes root read, overwrite or run it. So every VM.create, whether from
a spec or raw domain XML, is turned into domain XML and checked here against `VmLimits`, which
the agent owns (ferry.agent.config):

- the emulator is one of the allowlisted binaries (default: the distribution's qemu-system);
- kernel and initrd are files under the images directories, the serial console log a file under
  the console log directory; every path component is [A-Za-z0-9._-] (no "..") and bounded;
- names (VM, machine, arch) are [A-Za-z0-9._-], bounded; the VM id is a UUID;
- numbers are bounded: memory 16 MiB..16 TiB, vCPUs 1..512, the memtune hard limit, bandwidth;
- raw XML may hold only the elements and attributes Ferry's own builder writes
  (ferry.common.domain_xml), so no disk, filesystem, host device, interface script, QEMU
  command-line passthrough or DOCTYPE/entities can smuggle another path in.

Each refusal is `InvalidInput(field, reason)`: the field is the VM.create parameter ("spec.kernel")
or, for raw XML, "xml" with the element named in the reason.
"""
from __future__ import annotations

import posixpath
import re
import uuid as uuidlib
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass

from ferry.common.errors import InvalidInput
from ferry.pki.layout import check_address

SAFE_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
MAX_NAME = 63                       # VM names (libvirt and file names stay readable)
MAX_COMPONENT = 255                 # one path component
MAX_PATH = 1024
MAX_XML_BYTES = 64 * 1024
MAX_CMDLINE = 4096
MIN_MEMORY_MIB = 16
MAX_MEMORY_MIB = 16 * 1024 * 1024   # 16 TiB: the largest x86 hosts
MAX_VCPUS = 512
MAX_HARD_LIMIT_KIB = 2 * MAX_MEMORY_MIB * 1024  # guest memory plus QEMU's overhead
MAX_BANDWIDTH_MIBS = 1_000_000      # ~8 Tbit/s: above any NIC, below libvirt's overflow
MAX_INCOMING_LIMIT = 64

_UNITS_KIB = {"b": 1 / 1024, "bytes": 1 / 1024, "k": 1, "kib": 1, "kb": 1000 / 1024,
              "m": 1024, "mib": 1024, "mb": 1e6 / 1024, "g": 1024 ** 2, "gib": 1024 ** 2, "gb": 1e9 / 1024,
              "t": 1024 ** 3, "tib": 1024 ** 3, "tb": 1e12 / 1024}


@dataclass(frozen=True)
class VmLimits:
    """The agent's own allowlists (its configuration, never the request's)."""

    emulators: tuple[str, ...]
    images_dirs: tuple[str, ...]
    console_log_dir: str


# The elements (path from <domain>) and attributes raw XML may carry: what build_domain_xml writes.
_ALLOWED: dict[str, frozenset[str]] = {k: frozenset(v) for k, v in {
    "domain": {"type"}, "domain/name": (), "domain/uuid": (), "domain/memory": {"unit"},
    "domain/currentMemory": {"unit"}, "domain/vcpu": {"placement", "current"},
    "domain/memtune": (), "domain/memtune/hard_limit": {"unit"},
    "domain/os": (), "domain/os/type": {"arch", "machine"}, "domain/os/kernel": (), "domain/os/initrd": (),
    "domain/os/cmdline": (), "domain/features": (), "domain/features/acpi": (), "domain/features/apic": (),
    "domain/features/pae": (), "domain/clock": {"offset"},
    "domain/on_poweroff": (), "domain/on_reboot": (), "domain/on_crash": (),
    "domain/devices": (), "domain/devices/emulator": (),
    "domain/devices/serial": {"type"}, "domain/devices/serial/log": {"file", "append"},
    "domain/devices/serial/target": {"port", "type"},
    "domain/devices/console": {"type"}, "domain/devices/console/target": {"type", "port"},
    "domain/devices/memballoon": {"model"},
}.items()}
_ENUMS = {("domain", "type"): ("qemu", "kvm"), ("domain/clock", "offset"): ("utc", "localtime"),
          ("domain/vcpu", "placement"): ("static",), ("domain/devices/serial", "type"): ("pty",),
          ("domain/devices/console", "type"): ("pty",), ("domain/devices/console/target", "type"): ("serial",),
          ("domain/devices/serial/target", "type"): ("isa-serial", "serial"),
          ("domain/devices/serial/log", "append"): ("on", "off"), ("domain/devices/memballoon", "model"): ("none",)}
_LIFECYCLE = ("destroy", "restart", "preserve", "rename-restart")


def check_name(field: str, value: object, *, limit: int = MAX_NAME) -> str:
    """A named resource: [A-Za-z0-9._-], 1..limit characters, not "." or ".."."""
    if not isinstance(value, str) or not SAFE_NAME.match(value) or len(value) > limit or value in (".", ".."):
        raise InvalidInput(field, f"{_show(value)} must be 1-{limit} characters of letters, digits, '.', '_', '-'")
    return value


def check_uuid(field: str, value: object) -> str:
    try:
        if not isinstance(value, str) or len(value) != 36:
            raise ValueError
        return str(uuidlib.UUID(value))
    except ValueError:
        raise InvalidInput(field, f"{_show(value)} is not a UUID (8-4-4-4-12 hex digits)") from None


def check_int(field: str, value: object, minimum: int, maximum: int) -> int:
    """An integer (or a string of digits, as JSON-RPC clients send) within minimum..maximum."""
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.isascii() and
                                                                  value.strip().isdigit() and len(value) <= 100)):
        raise InvalidInput(field, f"must be an integer, got {_show(value)}")
    n = int(value)
    if not minimum <= n <= maximum:
        raise InvalidInput(field, f"must be {minimum}..{maximum}, got {n}")
    return n


def check_file_under(field: str, value: object, dirs: tuple[str, ...], what: str,
                     resolve: Callable[[str], str] = lambda p: p) -> str:
    """An absolute path of safe components, under one of `dirs` once resolved (symlinks too)."""
    if not isinstance(value, str) or not value.startswith("/") or len(value) > MAX_PATH:
        raise InvalidInput(field, f"must be an absolute path of at most {MAX_PATH} characters, got {_show(value)}")
    parts = value.strip("/").split("/")
    for part in parts:
        if not part or part in (".", "..") or not SAFE_NAME.match(part) or len(part) > MAX_COMPONENT:
            raise InvalidInput(field, f"{_show(value)}: path components must be letters, digits, '.', '_', '-' "
                                      "(no '..', no empty component)")
    real = resolve(value)
    for d in dirs:
        base = resolve(posixpath.normpath(d))
        if real.startswith(base.rstrip("/") + "/"):
            return value
    raise InvalidInput(field, f"{_show(value)} is not under {what} ({', '.join(dirs) or 'none configured'})")


def check_emulator(field: str, value: object, limits: VmLimits) -> str:
    if value not in limits.emulators:
        raise InvalidInput(field, f"{_show(value)} is not an allowed emulator (this agent allows: "
                                  f"{', '.join(limits.emulators)})")
    return value


def check_address_port(field: str, value: object) -> str:
    """host, host:port or [v6]:port where host is an IP address or a DNS name."""
    if not isinstance(value, str) or len(value) > 300:
        raise InvalidInput(field, f"must be host[:port], got {_show(value)}")
    text = value.strip()
    host, port = text, None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else (None if not rest else "x")
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    try:
        check_address(host)
    except InvalidInput:
        raise InvalidInput(field, f"{_show(value)}: {_show(host)} is not an IP address or a DNS name") from None
    if port is not None:
        check_int(field, port, 1, 65535)
    return value


def _memory_mib(field: str, el: ET.Element) -> int:
    unit = (el.get("unit") or "KiB").lower()
    if unit not in _UNITS_KIB:
        raise InvalidInput(field, f"unknown memory unit {_show(el.get('unit'))}")
    amount = check_int(field, (el.text or "").strip(), 0, 10 ** 100)  # bounded below, in MiB
    mib = amount * _UNITS_KIB[unit] / 1024
    if not MIN_MEMORY_MIB <= mib <= MAX_MEMORY_MIB:
        raise InvalidInput(field, f"must be {MIN_MEMORY_MIB}..{MAX_MEMORY_MIB} MiB, got {mib:g} MiB")
    return int(mib)


# Where each checked value sits in the XML, and the VM.create spec field it came from.
_FIELDS = {"domain/name": "name", "domain/uuid": "uuid", "domain/memory": "memory_mib",
           "domain/currentMemory": "memory_mib", "domain/vcpu": "vcpus",
           "domain/memtune/hard_limit": "memtune_hard_limit_kib", "domain/os/kernel": "kernel",
           "domain/os/initrd": "initrd", "domain/os/cmdline": "cmdline", "domain/os/type": "machine",
           "domain/devices/emulator": "emulator", "domain/devices/serial/log": "console_log"}


def check_domain_xml(xml: object, limits: VmLimits, *, from_spec: bool = False,
                     resolve: Callable[[str], str] = lambda p: p) -> None:
    """Raise InvalidInput unless every element, attribute and value of `xml` is allowed.

    `from_spec`: the XML was built from a VM.create spec, so refusals name the spec's field."""
    if not isinstance(xml, str) or len(xml.encode("utf-8", "surrogatepass")) > MAX_XML_BYTES:
        raise InvalidInput("xml", f"must be a string of at most {MAX_XML_BYTES} bytes")
    if "<!" in xml:
        raise InvalidInput("xml", "must not contain a DOCTYPE, entity or CDATA declaration")
    try:
        root = ET.fromstring(xml)
    except (ET.ParseError, ValueError) as exc:
        raise InvalidInput("xml", f"is not well-formed XML: {exc}") from None

    def field(path: str) -> str:
        return f"spec.{_FIELDS[path]}" if from_spec and path in _FIELDS else "xml"

    def at(path: str) -> str:
        return "".join(f"<{p}>" for p in path.split("/")[1:]) or "<domain>"

    seen: set[str] = set()
    stack = [(root, "domain")] if root.tag == "domain" else []
    if not stack:
        raise InvalidInput("xml", f"root element must be <domain>, got <{_show(root.tag)}>")
    while stack:
        el, path = stack.pop()
        if path not in _ALLOWED:
            raise InvalidInput("xml", f"element {at(path)} is not allowed in a Ferry VM (only what "
                                      "ferry.common.domain_xml writes: no disks, devices or passthrough)")
        if path in seen and path not in ("domain/features/acpi",):
            raise InvalidInput("xml", f"element {at(path)} appears more than once")
        seen.add(path)
        for attr, value in el.attrib.items():
            if attr not in _ALLOWED[path]:
                raise InvalidInput("xml", f"attribute {attr!r} of {at(path)} is not allowed")
            allowed = _ENUMS.get((path, attr))
            if allowed and value not in allowed:
                raise InvalidInput("xml", f"{at(path)} {attr}={_show(value)} must be one of {', '.join(allowed)}")
        _check_value(el, path, field(path), at(path), limits, resolve)
        stack.extend((child, f"{path}/{child.tag}") for child in el)
    if "domain/name" not in seen:
        raise InvalidInput("xml", "the domain has no <name>")


def _check_value(el: ET.Element, path: str, field: str, where: str, limits: VmLimits,
                 resolve: Callable[[str], str]) -> None:
    text = (el.text or "").strip()
    if path == "domain/name":
        check_name(field, text)
    elif path == "domain/uuid":
        check_uuid(field, text)
    elif path in ("domain/memory", "domain/currentMemory"):
        _memory_mib(field, el)
    elif path == "domain/vcpu":
        check_int(field, text, 1, MAX_VCPUS)
        if el.get("current") is not None:
            check_int(field, el.get("current"), 1, MAX_VCPUS)
    elif path == "domain/memtune/hard_limit":
        if (el.get("unit") or "KiB").lower() not in ("k", "kib"):
            raise InvalidInput(field, f"{where}: give the hard limit in KiB")
        check_int(field, text, 1, MAX_HARD_LIMIT_KIB)
    elif path in ("domain/os/kernel", "domain/os/initrd"):
        check_file_under(field, text, limits.images_dirs, "the agent's images directory", resolve)
    elif path == "domain/os/cmdline":
        if len(text) > MAX_CMDLINE or any(c in text for c in "\x00\n\r"):
            raise InvalidInput(field, f"must be one line of at most {MAX_CMDLINE} characters without NUL")
    elif path == "domain/os/type":
        if text != "hvm":
            raise InvalidInput("xml", f"{where} must be hvm, got {_show(text)}")
        for attr in ("arch", "machine"):
            if el.get(attr) is not None:
                check_name(field if attr == "machine" else "xml", el.get(attr))
    elif path == "domain/devices/emulator":
        check_emulator(field, text, limits)
    elif path == "domain/devices/serial/log":
        check_file_under(field, el.get("file"), (limits.console_log_dir,), "the console log directory", resolve)
    elif path in ("domain/on_poweroff", "domain/on_reboot", "domain/on_crash"):
        if text not in _LIFECYCLE:
            raise InvalidInput("xml", f"{where} must be one of {', '.join(_LIFECYCLE)}, got {_show(text)}")
    elif path == "domain/devices/serial/target" or path == "domain/devices/console/target":
        if el.get("port") is not None:
            check_int("xml", el.get("port"), 0, 3)
    elif text:
        raise InvalidInput("xml", f"{where} must be empty, got {_show(text)}")


def _show(value: object, limit: int = 80) -> str:
    """A value for an error message: repr, cut short (a 10k-character value is not echoed)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...'"


def check_request(method: str, params: dict, limits: VmLimits,
                  resolve: Callable[[str], str] = lambda p: p) -> None:
    """The checks of one agent request before its verb runs (the verb checks the rest)."""
    from ferry.agent.vms import domain_xml_from_create_params

    if "vmID" in params:
        check_uuid("vmID", params["vmID"])
    if method == "VM.create":
        check_domain_xml(domain_xml_from_create_params(params), limits, from_spec=params.get("spec") is not None,
                         resolve=resolve)
    elif method == "VM.migrate":
        raw = params.get("params")
        raw = raw if isinstance(raw, dict) else {k: v for k, v in params.items() if k != "vmID"}
        if raw.get("maxBandwidth") is not None:
            check_int("maxBandwidth", raw["maxBandwidth"], 0, MAX_BANDWIDTH_MIBS)
        for key in ("dst", "dstqemu", "consoleAddress"):
            if raw.get(key) not in (None, ""):
                check_address_port(key, raw[key])
    elif method == "VM.migrateChangeParams":
        raw = params.get("params")
        if isinstance(raw, dict) and raw.get("maxBandwidth") is not None:
            check_int("params.maxBandwidth", raw["maxBandwidth"], 1, MAX_BANDWIDTH_MIBS)
    elif method == "VM.migrationCreate":
        if params.get("name") is not None:
            check_name("name", params["name"])
        if params.get("incomingLimit") is not None:
            check_int("incomingLimit", params["incomingLimit"], 1, MAX_INCOMING_LIMIT)
