"""The lab's address plan and directory layout (pure: no I/O).

Lab `L` (0..9) is one network, 198.18.L.0/24 (RFC 2544's block for benchmark networks, so it
clashes with nothing real): a bridge `ferry<L>br` in the machine's own network namespace holds
198.18.L.1 (the engine's, the tests' and the CLI's side), and host `i` (1-based, 1..4) lives in
its own network namespace `ferry<L>-h<i>` with address 198.18.L.(i+1) on `eth0`, the inner end
of a veth pair whose outer end `ferry<L>h<i>` is a port of the bridge (see ferry.lab.network).
The host's hostname is ferry-h<i> (lab 0) or ferry<L>-h<i>; its libvirt is
qemu+tcp://<address>/system, its agent https://<address>:54321/. The lab itself (status, down,
verify) reaches each libvirtd through its unix socket (`local_uri`), which a cut link leaves alone.
Everything a lab owns lives under <root>/lab<L>/ so labs with different ids run side by side;
guest images are shared by all labs under <root>/images/.
"""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from ferry.common.errors import InvalidInput

MAX_LAB_ID = 9
MAX_HOSTS = 4
DEFAULT_HOSTS = 2
AGENT_PORT = 54321
LAB_NET_BASE = "198.18"  # RFC 2544 benchmark block; lab L is 198.18.L.0/24
SUBNET_PREFIX_LEN = 24
# In a lab's directory: its agents run in --dev mode (plain HTTP) instead of mutual TLS.
AGENTS_DEV_MARKER = "agents-dev"
DEFAULT_ROOT = Path("/var/lib/ferry/lab")
_HOST_UUID_NS = uuid.UUID("0f3a6c1e-8d52-4b7a-9e21-3c5d7f90a1b4")

# Directories each host's libvirtd gets as its own: host-dir name -> path inside the host.
HOST_MOUNTS = (
    ("etc", "/etc/libvirt"),
    ("run", "/run/libvirt"),
    ("log", "/var/log/libvirt"),
    ("lib", "/var/lib/libvirt"),
    ("cache", "/var/cache/libvirt"),
    ("tls/etc/pki", "/etc/pki"),  # the host's enrollment: agent, libvirt and QEMU TLS (ferry.lab.tls)
)


def lab_subnet_prefix(lab_id: int) -> str:
    """The first three octets of lab `lab_id`'s network."""
    return f"{LAB_NET_BASE}.{check_lab_id(lab_id)}"


def lab_id_from_env(env: dict[str, str] | None = None) -> int:
    """The lab id from FERRY_LAB_ID (default 0), validated."""
    raw = (os.environ if env is None else env).get("FERRY_LAB_ID", "0")
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput("FERRY_LAB_ID", f"{raw!r} is not an integer 0..{MAX_LAB_ID}") from None
    return check_lab_id(value)


def check_lab_id(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_LAB_ID:
        raise InvalidInput("lab_id", f"must be an integer 0..{MAX_LAB_ID}, got {value!r}")
    return value


def check_host_count(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_HOSTS:
        raise InvalidInput("hosts", f"must be an integer 1..{MAX_HOSTS}, got {n!r}")
    return n


@dataclass(frozen=True)
class HostPlan:
    """Where one lab host lives: identity, address and its directory outside the host."""

    lab_id: int
    index: int
    root: Path

    @property
    def name(self) -> str:
        """Host name inside the lab and its UTS hostname."""
        return f"ferry-h{self.index}" if self.lab_id == 0 else f"ferry{self.lab_id}-h{self.index}"

    @property
    def address(self) -> str:
        """The host's address on the lab network (its eth0 inside its network namespace)."""
        return f"{lab_subnet_prefix(self.lab_id)}.{self.index + 1}"

    @property
    def uri(self) -> str:
        """libvirt over the lab network, as the engine, other hosts and the tests use it."""
        return f"qemu+tcp://{self.address}/system"

    @property
    def local_uri(self) -> str:
        """libvirt through the host's unix socket: a local path that no network fault touches."""
        return f"qemu+unix:///system?socket={self.dir / 'run' / 'libvirt-sock'}"

    @property
    def netns(self) -> str:
        """The host's network namespace (a file under /run/netns, as `ip netns` makes them)."""
        return f"ferry{self.lab_id}-h{self.index}"

    @property
    def veth(self) -> str:
        """The outer end of the host's link, a port of the lab bridge (the end `cut-off` pulls)."""
        return f"ferry{self.lab_id}h{self.index}"

    @property
    def agents_tls(self) -> bool:
        """Whether this lab's agents serve mutual TLS (the default) or plain HTTP (--dev)."""
        return not (self.dir.parent / AGENTS_DEV_MARKER).exists()

    @property
    def agent_url(self) -> str:
        return f"{'https' if self.agents_tls else 'http'}://{self.address}:{AGENT_PORT}/"

    @property
    def host_uuid(self) -> str:
        """Stable per (lab, host): libvirt refuses to migrate between hosts with equal UUIDs."""
        return str(uuid.uuid5(_HOST_UUID_NS, f"lab{self.lab_id}-h{self.index}"))

    @property
    def dir(self) -> Path:
        return self.root / f"lab{self.lab_id}" / f"h{self.index}"

    def outside(self, inside_path: str) -> Path:
        """The path outside the host of a file under one of the host's own directories."""
        for sub, target in HOST_MOUNTS:
            if inside_path == target or inside_path.startswith(target + "/"):
                return self.dir / sub / inside_path[len(target):].lstrip("/")
        raise InvalidInput("path", f"{inside_path!r} is not under a per-host libvirt directory")


@dataclass(frozen=True)
class LabPlan:
    """All of one lab's hosts and directories."""

    lab_id: int
    root: Path = DEFAULT_ROOT

    def __post_init__(self) -> None:
        check_lab_id(self.lab_id)

    @property
    def dir(self) -> Path:
        return self.root / f"lab{self.lab_id}"

    @property
    def state_file(self) -> Path:
        return self.dir / "state.json"

    @property
    def images_dir(self) -> Path:
        return self.root / "images"

    @property
    def nft_table(self) -> str:
        """The table earlier versions of the lab cut hosts off with (removed at up and down)."""
        return f"ferry_lab{self.lab_id}"

    @property
    def bridge(self) -> str:
        return f"ferry{self.lab_id}br"

    @property
    def subnet(self) -> str:
        return f"{lab_subnet_prefix(self.lab_id)}.0/{SUBNET_PREFIX_LEN}"

    @property
    def bridge_address(self) -> str:
        """The machine's own address on the lab network (source of engine -> agent traffic)."""
        return f"{lab_subnet_prefix(self.lab_id)}.1"

    def host(self, index: int) -> HostPlan:
        check_host_count(index)
        return HostPlan(self.lab_id, index, self.root)

    def hosts(self, n: int) -> list[HostPlan]:
        check_host_count(n)
        return [self.host(i) for i in range(1, n + 1)]

    def resolve(self, ref: object, n: int = MAX_HOSTS) -> HostPlan:
        """A host from an index (1), a name (ferry-h1) or an address (198.18.0.2)."""
        if isinstance(ref, HostPlan) and ref.lab_id == self.lab_id and ref.root == self.root:
            return ref
        for h in self.hosts(n):
            if ref in (h.index, str(h.index), h.name, h.address):
                return h
        raise InvalidInput("host", f"{ref!r} is not a host of lab {self.lab_id} "
                                   f"(use 1..{n}, a host name or an address)")
