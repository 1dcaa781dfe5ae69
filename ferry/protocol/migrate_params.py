"""VM.migrate parameters: Vdsm's names and defaults, as one typed value with its wire form.

The engine's planner builds a `MigrateParams` and sends `to_wire()`; the agent reads the call
with `MigrateParams.from_wire`. Unknown keys are not errors (Vdsm logs "parameters [...] were
not recognized" and goes on): this is how an agent that predates `zerocopy` drops it
(`knows_zerocopy=False`), and the engine relies on the migration going on. Bad values of known
keys raise InvalidInput naming the field and the reason.
"""
from __future__ import annotations

from dataclasses import dataclass

from ferry.common.errors import InvalidInput
from ferry.protocol.adaptive import ADAPTIVE_PARAM, AdaptiveSpec
from ferry.protocol.schedule import MAX_DOWNTIME_MS, Schedule, legacy_schedule

DEFAULT_MAX_BANDWIDTH_MIBS = 52   # Vdsm's migration_max_bandwidth
MAX_PARALLEL_CONNECTIONS = 255    # QEMU's multifd-channels maximum
MAX_MIGRATION_LIMIT = 64
METHODS = ("online",)

BOOL_PARAMS = {
    "tunneled": "tunneled",
    "abortOnError": "abort_on_error",
    "compressed": "compressed",
    "autoConverge": "auto_converge",
    "encrypted": "encrypted",
    "enableGuestEvents": "enable_guest_events",
}
# Keys every agent knows; `zerocopy` is added only by agents that know zero-copy.
BASE_MIGRATE_PARAMS = frozenset(
    {"dst", "dstqemu", "method", "parallel", "maxBandwidth", "convergenceSchedule", "outgoingLimit",
     "incomingLimit", "consoleAddress", "downtime", "vmId", "src", "mode", "maxTimePerGiB",
     "progressTimeout", ADAPTIVE_PARAM} | set(BOOL_PARAMS)
)
ZEROCOPY_PARAM = "zerocopy"
# The order `to_wire` lists the flags in (the engine's, since its first release).
_WIRE_BOOLS = ("tunneled", "abortOnError", "autoConverge", "compressed", "encrypted", "enableGuestEvents")


@dataclass(frozen=True)
class MigrateParams:
    dst: str                                  # destination agent: host[:port]
    dstqemu: str | None = None                # migration network address of the destination
    method: str = "online"
    tunneled: bool = False
    abort_on_error: bool = False
    compressed: bool = False
    auto_converge: bool = False
    encrypted: bool = False
    enable_guest_events: bool = False
    parallel: int | None = None               # None = off; N >= 1 connections
    zerocopy: bool = False
    # MiB/s, 0 = unlimited; None = not sent (the agent's own DEFAULT_MAX_BANDWIDTH_MIBS applies;
    # `from_wire` fills that default in, as the agent reads an absent key).
    max_bandwidth: int | None = None
    schedule: Schedule | None = None          # None: legacy schedule
    outgoing_limit: int | None = None
    incoming_limit: int | None = None
    console_address: str | None = None
    downtime: int | None = None               # legacy max downtime (ms)
    # Ferry: Vdsm's hard limits for this call (s per GiB of memory / s without a new low of the
    # remaining data; 0 = off); None = the agent's (see ferry.agent.hard_limits)
    max_time_per_gib: int | None = None
    progress_timeout: int | None = None
    # Ferry: forecast-driven convergence (ferry.protocol.adaptive); `schedule` is then the
    # fallback an older agent runs
    adaptive: AdaptiveSpec | None = None

    @property
    def dst_host(self) -> str:
        return split_host_port(self.dst)[0]

    @property
    def dst_port(self) -> int | None:
        return split_host_port(self.dst)[1]

    @property
    def bandwidth_mibs(self) -> int:
        """The cap the agent applies: the one sent, else its default."""
        return DEFAULT_MAX_BANDWIDTH_MIBS if self.max_bandwidth is None else self.max_bandwidth

    def effective_schedule(self) -> Schedule:
        if self.schedule is not None:
            return self.schedule
        if self.downtime:
            return legacy_schedule(self.downtime)
        return legacy_schedule()

    def to_wire(self) -> dict:
        """VM.migrate's params: the flags always, the rest only when set. `zerocopy` only when
        on: an agent that predates it would log it as not recognized for nothing."""
        wire: dict = {"dst": self.dst, "method": self.method}
        wire.update({key: getattr(self, BOOL_PARAMS[key]) for key in _WIRE_BOOLS})
        optional = (("outgoingLimit", self.outgoing_limit), ("incomingLimit", self.incoming_limit),
                    ("parallel", self.parallel), ("zerocopy", True if self.zerocopy else None),
                    ("maxBandwidth", self.max_bandwidth),
                    ("convergenceSchedule", self.schedule.to_wire() if self.schedule is not None else None),
                    ("downtime", self.downtime), ("dstqemu", self.dstqemu),
                    ("consoleAddress", self.console_address), ("maxTimePerGiB", self.max_time_per_gib),
                    ("progressTimeout", self.progress_timeout),
                    (ADAPTIVE_PARAM, self.adaptive.to_wire() if self.adaptive is not None else None))
        wire.update({key: value for key, value in optional if value is not None})
        return wire

    @classmethod
    def from_wire(cls, raw: dict, *, knows_zerocopy: bool = True) -> tuple[MigrateParams, tuple[str, ...]]:
        """Checks VM.migrate's params; returns them and the keys that were not recognized."""
        if not isinstance(raw, dict):
            raise InvalidInput("params", f"must be an object, got {type(raw).__name__}")
        known = BASE_MIGRATE_PARAMS | ({ZEROCOPY_PARAM} if knows_zerocopy else set())
        unrecognized = tuple(sorted(k for k in raw if k not in known))

        dst = raw.get("dst")
        if not isinstance(dst, str) or not dst.strip():
            raise InvalidInput("dst", f"the destination host[:port] is required, got {dst!r}")
        split_host_port(dst)
        method = raw.get("method", "online")
        if method not in METHODS:
            raise InvalidInput("method", f"only 'online' migration is supported, got {method!r}")
        values: dict = {"dst": dst.strip(), "dstqemu": _opt_str(raw, "dstqemu"),
                        "console_address": _opt_str(raw, "consoleAddress"),
                        "max_bandwidth": DEFAULT_MAX_BANDWIDTH_MIBS}
        for key, attr in BOOL_PARAMS.items():
            if raw.get(key) is not None:
                values[attr] = parse_bool(raw[key], key)
        if knows_zerocopy and raw.get(ZEROCOPY_PARAM) is not None:
            values["zerocopy"] = parse_bool(raw[ZEROCOPY_PARAM], ZEROCOPY_PARAM)
        if raw.get("parallel") is not None:
            n = parse_int(raw["parallel"], "parallel", minimum=0, maximum=MAX_PARALLEL_CONNECTIONS)
            values["parallel"] = n or None
        if raw.get("maxBandwidth") is not None:
            values["max_bandwidth"] = parse_int(raw["maxBandwidth"], "maxBandwidth", minimum=0)
        for key, attr in (("outgoingLimit", "outgoing_limit"), ("incomingLimit", "incoming_limit")):
            if raw.get(key) is not None:
                values[attr] = parse_int(raw[key], key, minimum=1, maximum=MAX_MIGRATION_LIMIT)
        if raw.get("downtime") is not None:
            values["downtime"] = parse_int(raw["downtime"], "downtime", minimum=1, maximum=MAX_DOWNTIME_MS)
        for key, attr in (("maxTimePerGiB", "max_time_per_gib"), ("progressTimeout", "progress_timeout")):
            if raw.get(key) is not None:
                values[attr] = parse_int(raw[key], key, minimum=0, maximum=86_400)
        if raw.get("convergenceSchedule") is not None:
            values["schedule"] = Schedule.from_wire(raw["convergenceSchedule"])
        if raw.get(ADAPTIVE_PARAM) is not None:
            values["adaptive"] = AdaptiveSpec.from_wire(raw[ADAPTIVE_PARAM])
        return cls(**values), unrecognized


def split_host_port(address: str) -> tuple[str, int | None]:
    """'host', 'host:54321', '[::1]:54321' or '::1' -> (host, port or None)."""
    address = address.strip()
    if address.startswith("["):
        host, closed, rest = address[1:].partition("]")
        if not closed or not host or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            raise InvalidInput("dst", f"must be [address] or [address]:port, got {address!r}")
        return host, int(rest[1:]) if rest else None
    if address.count(":") == 1:
        host, _, port = address.partition(":")
        if not port.isdigit():
            raise InvalidInput("dst", f"port must be a number, got {address!r}")
        return host, int(port)
    return address, None


def url_host(host: str) -> str:
    """A host for a URI: IPv6 literals go in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def parse_bool(value, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise InvalidInput(field, f"must be true or false, got {value!r}")


def parse_int(value, field: str, *, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not (
        isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit())
    ):
        raise InvalidInput(field, f"must be an integer, got {value!r}")
    n = int(value)
    if n < minimum or (maximum is not None and n > maximum):
        upper = f"..{maximum}" if maximum is not None else " or more"
        raise InvalidInput(field, f"must be {minimum}{upper}, got {n}")
    return n


def _opt_str(raw: dict, key: str) -> str | None:
    value = raw.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidInput(key, f"must be a string, got {value!r}")
    return value.strip()


def unrecognized_message(keys: tuple[str, ...]) -> str:
    """The log line Vdsm writes for keys it does not know."""
    return f"parameters {list(keys)} were not recognized"
