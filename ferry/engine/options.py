"""Migration options as an admin sets them on a cluster, overrides on a VM, and knows of a host.

Plain values, no I/O: the planner reads them, the store persists them, the REST API and the
CLI parse into them. Names follow oVirt's (parallel migrations AUTO / AUTO_PARALLEL / DISABLED /
CUSTOM, bandwidth AUTO / HYPERVISOR_DEFAULT / CUSTOM, resilience policy ...).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ferry.common.errors import InvalidInput

MIN_PARALLEL_CONNECTIONS = 2
MAX_PARALLEL_CONNECTIONS = 255


def short_form(text: str) -> tuple[str, int | str | None]:
    """The one parser of the short text form of a mode-with-a-number setting (parallel, bandwidth).

    'CUSTOM:8' -> ('CUSTOM', 8), a bare '8' -> ('CUSTOM', 8), 'auto-parallel' -> ('AUTO_PARALLEL',
    None). A number part that is not digits comes back as its text ('CUSTOM:lots' -> ('CUSTOM',
    'lots'), 'CUSTOM:' -> ('CUSTOM', '')) for the caller's value type to refuse, naming its field.
    """
    raw = str(text).strip()
    mode, sep, number = raw.partition(":")
    mode = mode.strip().upper().replace("-", "_")
    if not sep:
        return ("CUSTOM", int(mode)) if mode.isdigit() else (mode, None)
    number = number.strip()
    return mode, int(number) if number.isdigit() else number


class ParallelMode(str, Enum):
    """oVirt's parallel migration connections setting."""

    AUTO = "AUTO"                  # parallel or not, as bandwidth and vCPUs allow
    AUTO_PARALLEL = "AUTO_PARALLEL"  # always parallel, automatic connection count (>= 2)
    DISABLED = "DISABLED"          # never parallel
    CUSTOM = "CUSTOM"              # a fixed number of connections, 2..255


@dataclass(frozen=True)
class ParallelSetting:
    mode: ParallelMode
    connections: int | None = None  # only with CUSTOM

    def __post_init__(self) -> None:
        if self.mode is ParallelMode.CUSTOM:
            n = self.connections
            if not isinstance(n, int) or isinstance(n, bool) or not (
                MIN_PARALLEL_CONNECTIONS <= n <= MAX_PARALLEL_CONNECTIONS
            ):
                raise InvalidInput(
                    "parallel.connections",
                    f"must be an integer from {MIN_PARALLEL_CONNECTIONS} to "
                    f"{MAX_PARALLEL_CONNECTIONS} with CUSTOM, got {n!r}",
                )
        elif self.connections is not None:
            raise InvalidInput("parallel.connections", f"only allowed with CUSTOM, not {self.mode.value}")

    @classmethod
    def parse(cls, text: str, field: str = "parallel") -> ParallelSetting:
        """'AUTO', 'AUTO_PARALLEL', 'DISABLED', 'CUSTOM:8' or a bare '8' (= CUSTOM 8)."""
        raw = str(text).strip()
        mode, n = short_form(raw)
        if mode == ParallelMode.CUSTOM.value:
            if not isinstance(n, int):
                raise InvalidInput(field, f"CUSTOM needs a connection count, e.g. CUSTOM:4, got {raw!r}")
            return cls(ParallelMode.CUSTOM, n)
        try:
            if n is None:
                return cls(ParallelMode(mode))
        except ValueError:
            pass
        choices = ", ".join(m.value for m in ParallelMode)
        raise InvalidInput(field, f"unknown parallel setting {raw!r} (one of {choices}, or a number 2..255)")

    def __str__(self) -> str:
        return f"CUSTOM:{self.connections}" if self.mode is ParallelMode.CUSTOM else self.mode.value


class BandwidthMode(str, Enum):
    """oVirt's migration bandwidth assignment."""

    AUTO = "AUTO"                              # slower host's migration link speed
    HYPERVISOR_DEFAULT = "HYPERVISOR_DEFAULT"  # send nothing; the agent uses its own default
    CUSTOM = "CUSTOM"                          # an explicit Mbps value


@dataclass(frozen=True)
class BandwidthSetting:
    mode: BandwidthMode
    custom_mbps: int | None = None

    def __post_init__(self) -> None:
        if self.mode is BandwidthMode.CUSTOM:
            v = self.custom_mbps
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise InvalidInput("bandwidth.custom_mbps", f"CUSTOM bandwidth needs a positive Mbps value, got {v!r}")
        elif self.custom_mbps is not None:
            raise InvalidInput("bandwidth.custom_mbps", f"only allowed with CUSTOM, not {self.mode.value}")


class ResiliencePolicy(str, Enum):
    """What the engine does with a cluster's VMs when their host fails (oVirt's migrateOnError)."""

    MIGRATE = "MIGRATE"
    MIGRATE_HIGHLY_AVAILABLE = "MIGRATE_HIGHLY_AVAILABLE"
    DO_NOT_MIGRATE = "DO_NOT_MIGRATE"


class ZeroCopySupport(str, Enum):
    """What the engine knows of a source host's zero-copy support, from its agent's capabilities."""

    YES = "YES"          # the agent reports zerocopy_migrations: true
    NO = "NO"            # the agent reports zerocopy_migrations: false
    UNKNOWN = "UNKNOWN"  # the agent does not report it at all (an older agent)


@dataclass(frozen=True)
class ClusterMigrationOptions:
    """A cluster's migration settings (oVirt: cluster > Migration Policy tab)."""

    policy_id: str
    parallel: ParallelSetting = ParallelSetting(ParallelMode.DISABLED)
    encrypted: bool = False
    bandwidth: BandwidthSetting = BandwidthSetting(BandwidthMode.AUTO)
    auto_converge: bool = False
    compressed: bool = False
    resilience: ResiliencePolicy = ResiliencePolicy.MIGRATE
    # oVirt's cluster-level gate for parallel migrations (4.7+); zero-copy policies need it.
    parallel_supported: bool = True


@dataclass(frozen=True)
class VmMigrationOverrides:
    """Per-VM overrides; None means "inherit the cluster's"."""

    policy_id: str | None = None
    parallel: ParallelSetting | None = None
    encrypted: bool | None = None
    auto_converge: bool | None = None
    compressed: bool | None = None
    downtime_ms: int | None = None


@dataclass(frozen=True)
class HostMigrationInfo:
    """What the planner needs to know of a source or destination host."""

    name: str
    address: str                          # the agent's (management) address
    migration_address: str | None = None  # address on the migration network, if any
    migration_network_up: bool = False
    link_speed_mbps: int | None = None    # migration link speed; None = unknown
    zerocopy: ZeroCopySupport = ZeroCopySupport.UNKNOWN
