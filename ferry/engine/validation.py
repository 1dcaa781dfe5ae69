"""Input checks of the engine's use cases: names, text, addresses, URLs, numbers, enums,
settings, and the zero-copy gate (a zero-copy policy only where the cluster supports parallel
migrations). A VM's spec and workload are checked in ferry.engine.vm_validation.

Pure functions of their arguments; each raises InvalidInput naming the field and the reason,
so bad input from the REST API or the CLI never becomes a traceback or a 500, and never reaches
the database: text is bounded and holds no NUL and no lone surrogate (SQLite and JSON cannot
encode one), integers fit the bounds the engine and its agents use (SQLite's are 64-bit),
addresses parse, agent URLs never point at link-local (cloud metadata) addresses. The services
(ferry.engine.services) call them before the repositories persist; they hold no database code.
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from enum import Enum
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ferry.common.errors import InvalidInput
from ferry.engine.options import BandwidthSetting, ParallelSetting
from ferry.engine.policies import MigrationPolicy

# A VM's downtime is capped at the VM.migrate limit (ferry.protocol.schedule.MAX_DOWNTIME_MS),
# which the planner and the agent check, so any downtime the store accepts can be sent.
MAX_LINK_SPEED_MBPS = 10_000_000
MAX_BANDWIDTH_MBPS = MAX_LINK_SPEED_MBPS    # a custom migration bandwidth: at most the fastest link
MAX_ROW_ID = 2 ** 63 - 1                    # SQLite's (and PostgreSQL's bigint) largest integer
MAX_NAME = 63
MAX_TEXT = 4096                             # descriptions, command lines
MAX_REF = 255                               # a reference to something by name or id
MAX_URL = 2048
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
# A policy name is shown to people like oVirt's ("Minimal downtime"): the safe characters and
# single inner spaces; never '/', NUL, or a name that is only dots.
_POLICY_NAME_RE = re.compile(r"^[A-Za-z0-9._-]+( [A-Za-z0-9._-]+)*$")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME_RE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")
# Link-local (169.254/16, fe80::/10) holds the cloud metadata services (169.254.169.254,
# fd00:ec2::254 is unique-local but AWS's IPv6 metadata address, so it is named too).
_METADATA_ADDRESSES = {ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")}
_METADATA_NAMES = {"metadata", "metadata.google.internal", "metadata.goog", "instance-data",
                   "instance-data.ec2.internal"}

E = TypeVar("E", bound=Enum)


def show(value: Any, limit: int = 80) -> str:
    """A value for an error message: its repr (escapes NUL and surrogates), cut short, so a
    10k-character value is not echoed back."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...'"


def text_problem(value: str) -> str | None:
    """Why a string cannot be stored (a NUL, a lone surrogate), or None."""
    if "\x00" in value:
        return "must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (it holds a lone surrogate such as \\ud800)"
    return None


def check_text(field: str, value: Any, max_len: int = MAX_TEXT, *, one_line: bool = False) -> str:
    """A string of at most `max_len` characters, storable: no NUL, no lone surrogate."""
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be a string, got {show(value)}")
    if len(value) > max_len:
        raise InvalidInput(field, f"must be at most {max_len} characters, got {len(value)}")
    problem = text_problem(value)
    if problem:
        raise InvalidInput(field, problem)
    if one_line and ("\n" in value or "\r" in value):
        raise InvalidInput(field, "must be one line")
    return value


def check_ref(field: str, value: Any) -> str:
    """A reference to an object by name or id (looked up afterwards): storable text, bounded."""
    return check_text(field, value, MAX_REF, one_line=True)


def check_name(field: str, value: Any) -> str:
    """A named resource (cluster, host, VM): [A-Za-z0-9._-], 1-63, starting with a letter or digit."""
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise InvalidInput(field, f"{show(value)} must be 1-63 letters, digits, '_', '.', '-', "
                                  "starting with a letter or digit")
    return value


def check_policy_name(field: str, value: Any) -> str:
    """A custom policy's name: [A-Za-z0-9._-] words separated by single spaces, 1-63 characters."""
    if (not isinstance(value, str) or len(value.strip()) > MAX_NAME or not _POLICY_NAME_RE.match(value.strip())
            or set(value.strip()) <= {"."}):
        raise InvalidInput(field, f"{show(value)} must be 1-{MAX_NAME} characters: letters, digits, '.', "
                                  "'_', '-' and single spaces between words (no '/', no NUL)")
    return value


def check_address(field: str, value: Any) -> str:
    """An IP address or a DNS host name (a name whose last label is a number, like
    999.999.1.1, is a mistyped IP address, not a name)."""
    if isinstance(value, str) and len(value) <= 253:
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            if _HOSTNAME_RE.match(value) and not value.rsplit(".", 1)[-1].isdigit():
                return value
    raise InvalidInput(field, f"{show(value)} is not an IP address or host name")


def _metadata_reason(host: str) -> str | None:
    """Why an agent URL may not point at `host`: the cloud metadata services live on
    link-local addresses; the engine must never be turned into a way to ask them."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return "is a cloud metadata service name" if host.lower().rstrip(".") in _METADATA_NAMES else None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_link_local or ip in _METADATA_ADDRESSES:
        return "is a link-local or cloud metadata address"
    if ip.is_multicast or ip.is_unspecified:
        return "is not a host's address"
    return None


def check_url(field: str, value: Any) -> str:
    """An agent URL: http:// or https://, a host that is an IP address or a DNS name (not
    link-local, not a metadata service), an optional port 1..65535, no user:password."""
    if not isinstance(value, str) or len(value) > MAX_URL or text_problem(value) or any(c.isspace() for c in value):
        raise InvalidInput(field, f"{show(value)} is not an http:// or https:// URL")
    try:
        parts = urlsplit(value)
        host, port = parts.hostname, parts.port  # ValueError for "http://[::1" or a bad port
    except ValueError as exc:
        raise InvalidInput(field, f"{show(value)} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidInput(field, f"{show(value)} is not an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(field, f"{show(value)}: put no user or password in the URL")
    if port == 0:
        raise InvalidInput(field, f"{show(value)}: the port must be 1..65535")
    check_address(field, host)
    reason = _metadata_reason(host)
    if reason:
        raise InvalidInput(field, f"{show(value)}: {host} {reason}")
    return value


def check_int(field: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field, f"must be an integer, got {show(value)}")
    if not lo <= value <= hi:
        raise InvalidInput(field, f"must be from {lo} to {hi}, got {show(value)}")
    return value


def check_optional_int(field: str, value: Any, lo: int, hi: int) -> int | None:
    return None if value is None else check_int(field, value, lo, hi)


def check_bool(field: str, value: Any, *, optional: bool = False) -> bool | None:
    if value is None and optional:
        return None
    if not isinstance(value, bool):
        raise InvalidInput(field, f"must be true or false, got {value!r}")
    return value


def check_string(field: str, value: Any) -> str:
    return check_text(field, value)


def check_enum(enum_type: type[E], field: str, value: Any) -> E:
    """A member of `enum_type` by value, case-insensitive, '-' read as '_'."""
    if isinstance(value, enum_type):
        return value
    try:
        return enum_type(str(value).upper().replace("-", "_"))
    except ValueError:
        choices = ", ".join(e.value for e in enum_type)
        raise InvalidInput(field, f"unknown value {value!r} (one of {choices})") from None


def check_parallel(field: str, value: Any) -> ParallelSetting:
    if isinstance(value, ParallelSetting):
        return value
    if isinstance(value, str):
        return ParallelSetting.parse(value, field)
    raise InvalidInput(field, f"must be a parallel setting, got {value!r}")


def check_bandwidth(value: Any) -> BandwidthSetting:
    if isinstance(value, BandwidthSetting):
        if value.custom_mbps is not None:
            check_int("bandwidth.custom_mbps", value.custom_mbps, 1, MAX_BANDWIDTH_MBPS)
        return value
    raise InvalidInput("bandwidth", f"must be a bandwidth setting, got {show(value)}")


MAX_JSON_DEPTH = 16
MAX_JSON_ITEMS = 10_000


def check_json(field: str, value: Any, depth: int = MAX_JSON_DEPTH, *, inner_names: bool = False) -> Any:
    """A JSON value the database can store and give back: bounded depth and size, 64-bit
    integers, finite numbers, keys and strings without NUL or lone surrogates. With
    `inner_names`, a problem inside is named by its own path ("init[0].name"), not under `field`."""
    count = 0

    def join(path: str, key: str) -> str:
        return key if inner_names and path == field else f"{path}.{key}"

    def walk(v: Any, path: str, level: int) -> None:
        nonlocal count
        count += 1
        if count > MAX_JSON_ITEMS:
            raise InvalidInput(field, f"holds more than {MAX_JSON_ITEMS} values")
        if level > depth:
            raise InvalidInput(path, f"is nested more than {depth} levels deep")
        if isinstance(v, bool) or v is None:
            return
        if isinstance(v, int):
            if not -MAX_ROW_ID - 1 <= v <= MAX_ROW_ID:
                raise InvalidInput(path, f"integer {show(v)} does not fit in 64 bits")
        elif isinstance(v, float):
            if v != v or v in (float("inf"), float("-inf")):
                raise InvalidInput(path, "must be a finite number")
        elif isinstance(v, str):
            check_text(path, v, 65536)
        elif isinstance(v, dict):
            for k, item in v.items():
                if not isinstance(k, str):
                    raise InvalidInput(path, f"keys must be strings, got {show(k)}")
                check_text(join(path, "<key>"), k, MAX_REF)
                walk(item, join(path, k), level + 1)
        elif isinstance(v, (list, tuple)):
            for i, item in enumerate(v):
                walk(item, f"{path}[{i}]", level + 1)
        else:
            raise InvalidInput(path, f"must be JSON, got {type(v).__name__}")

    walk(value, field, 0)
    return value


def check_object(field: str, value: Any) -> dict[str, Any] | None:
    """A JSON object or None (a VM's workload, a host's capabilities), storable (check_json)."""
    if value is not None and not isinstance(value, dict):
        raise InvalidInput(field, "must be an object")
    return None if value is None else check_json(field, value)


def policy_input(data: Any) -> dict[str, Any]:
    """A custom policy's JSON form as sent; accepts what GET returned by dropping the
    read-only markers when they are false."""
    if not isinstance(data, Mapping):
        raise InvalidInput("policy", "must be an object")
    data = dict(data)
    if "name" in data:
        check_policy_name("name", data["name"])
    if data.get("description") is not None:
        check_text("description", data["description"])
    if data.get("id") is not None:
        check_ref("id", data["id"])
    check_json("policy", data, inner_names=True)
    for marker in ("builtin", "legacy"):
        if marker in data and data[marker] is False:
            del data[marker]
        elif marker in data:
            raise InvalidInput(marker, "custom policies cannot be built-in or Legacy")
    return data


def zerocopy_gate_error(field: str, policy: MigrationPolicy, cluster: str) -> InvalidInput:
    """Zero-copy needs parallel migrations (facts §2), which oVirt gates per cluster."""
    return InvalidInput(
        field,
        f"policy {policy.name!r} uses zero-copy migration, which needs parallel migrations, "
        f"and cluster {cluster!r} does not support parallel migrations (parallel_supported is false)",
    )


def check_zerocopy_gate(field: str, policy: MigrationPolicy, cluster: str, parallel_supported: bool) -> None:
    if policy.zerocopy and not parallel_supported:
        raise zerocopy_gate_error(field, policy, cluster)
