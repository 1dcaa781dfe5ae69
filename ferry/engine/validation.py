"""Input checks of the engine's use cases: names, addresses, URLs, numbers, enums, settings,
and the zero-copy gate (a zero-copy policy only where the cluster supports parallel migrations).

Pure functions of their arguments; each raises InvalidInput naming the field and the reason,
so bad input from the REST API or the CLI never becomes a traceback. The repositories call them
before they persist; they hold no database code.
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

MAX_DOWNTIME_MS = 600_000
MAX_LINK_SPEED_MBPS = 10_000_000
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME_RE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")

E = TypeVar("E", bound=Enum)


def check_name(field: str, value: Any) -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise InvalidInput(field, f"{value!r} must be 1-63 letters, digits, '_', '.', '-', "
                                  "starting with a letter or digit")
    return value


def check_address(field: str, value: Any) -> str:
    """An IP address or a DNS host name."""
    if isinstance(value, str):
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            if _HOSTNAME_RE.match(value):
                return value
    raise InvalidInput(field, f"{value!r} is not an IP address or host name")


def check_url(field: str, value: Any) -> str:
    if isinstance(value, str):
        parts = urlsplit(value)
        if parts.scheme in ("http", "https") and parts.hostname:
            try:
                _ = parts.port  # raises ValueError for a bad port
            except ValueError:
                raise InvalidInput(field, f"{value!r} has an invalid port") from None
            return value
    raise InvalidInput(field, f"{value!r} is not an http:// or https:// URL")


def check_optional_int(field: str, value: Any, lo: int, hi: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field, f"must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise InvalidInput(field, f"must be from {lo} to {hi}, got {value}")
    return value


def check_bool(field: str, value: Any, *, optional: bool = False) -> bool | None:
    if value is None and optional:
        return None
    if not isinstance(value, bool):
        raise InvalidInput(field, f"must be true or false, got {value!r}")
    return value


def check_string(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidInput(field, "must be a string")
    return value


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
        return value
    raise InvalidInput("bandwidth", f"must be a bandwidth setting, got {value!r}")


def check_object(field: str, value: Any) -> dict[str, Any] | None:
    """A JSON object or None (a VM's workload, a host's capabilities)."""
    if value is not None and not isinstance(value, dict):
        raise InvalidInput(field, "must be an object")
    return value


def policy_input(data: Any) -> dict[str, Any]:
    """A custom policy's JSON form as sent; accepts what GET returned by dropping the
    read-only markers when they are false."""
    if not isinstance(data, Mapping):
        raise InvalidInput("policy", "must be an object")
    data = dict(data)
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
