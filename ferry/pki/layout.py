"""Where Ferry's certificates live and what goes in them (pure: no I/O, no cryptography).

Two sides:

- The engine's PKI directory (FERRY_PKI_DIR, default <state dir>/pki, i.e. /var/lib/ferry/pki):
  the CA (ca.pem + private/ca.key), the engine's client certificate (engine.pem +
  private/engine.key) that the engine and the CLI present to agents, and one enrollment
  bundle per host under hosts/<name>/.
- A host's files (the bundle mirrors them relative to "/"): the agent's certificate under
  /etc/pki/ferry, and the libvirt and QEMU TLS material in the paths libvirt expects
  (/etc/pki/CA/cacert.pem, /etc/pki/libvirt/..., /etc/pki/qemu/...), so that libvirtd's TLS
  listener (qemu+tls://) and QEMU's TLS migration stream (VIR_MIGRATE_TLS) use certificates
  from the engine's CA.
"""
from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath

from ferry.common.errors import InvalidInput

DEFAULT_STATE_DIR = "/var/lib/ferry"

CA_DAYS = 3650           # the engine CA: ten years, like oVirt's
LEAF_DAYS = 398          # host and engine certificates: the longest browsers still accept
CLOCK_SKEW = timedelta(hours=1)  # not-before is back-dated so a host a little behind accepts it

CA_COMMON_NAME = "Ferry engine CA"
ENGINE_COMMON_NAME = "ferry-engine"
ORGANIZATION = "Ferry"

# Certificate purposes (extended key usage) of each kind of certificate.
SERVER = "server"
CLIENT = "client"
PURPOSES = {
    "agent": (SERVER, CLIENT),    # serves the agent API; calls other agents (VM.migrationCreate)
    "libvirt": (SERVER, CLIENT),  # libvirtd's TLS listener + client, QEMU's migration stream both ways
    "engine": (CLIENT,),          # the engine and the CLI calling agents
}

# Roles: a SAN URI in the agent's and the engine's certificates (see docs/security.md, "Roles").
# The engine's may call every agent verb; a host's only what a migration peer needs.
ROLE_URI_PREFIX = "ferry:role/"
ENGINE_ROLE = "engine"
HOST_ROLE = "host"
ENGINE_ROLE_URI = f"{ROLE_URI_PREFIX}{ENGINE_ROLE}"


def host_role_uri(name: str) -> str:
    """The SAN URI naming a host's agent certificate: ferry:role/host/<name>."""
    return f"{ROLE_URI_PREFIX}{HOST_ROLE}/{check_host_name(name)}"


@dataclass(frozen=True)
class Role:
    """A certificate's Ferry role: ("engine", None) or ("host", <host name>)."""

    kind: str
    host: str | None = None

    @property
    def subject(self) -> str:
        """How refusals name the caller: "engine" or "host h1"."""
        return self.kind if self.host is None else f"{self.kind} {self.host}"


def parse_role_uri(uri: object) -> Role | None:
    """The role a SAN URI names, or None when the URI is not a well-formed Ferry role."""
    if not isinstance(uri, str) or not uri.startswith(ROLE_URI_PREFIX):
        return None
    rest = uri[len(ROLE_URI_PREFIX):]
    if rest == ENGINE_ROLE:
        return Role(ENGINE_ROLE)
    kind, _, name = rest.partition("/")
    if kind == HOST_ROLE and _NAME.match(name):
        return Role(HOST_ROLE, name)
    return None


def role_of(uris: list[str] | tuple[str, ...]) -> Role | None:
    """The one role among a certificate's SAN URIs; None if it has none, a malformed one, or
    several (a certificate is one identity: two roles would be an issuing mistake, not a union)."""
    ferry = [u for u in uris if isinstance(u, str) and u.startswith(ROLE_URI_PREFIX)]
    if len(ferry) != 1:
        return None
    return parse_role_uri(ferry[0])


_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def pki_dir(env: dict[str, str] | None = None) -> Path:
    """The engine's PKI directory: FERRY_PKI_DIR, else <FERRY_STATE_DIR>/pki."""
    env = os.environ if env is None else env
    if env.get("FERRY_PKI_DIR"):
        return Path(env["FERRY_PKI_DIR"])
    return Path(env.get("FERRY_STATE_DIR") or DEFAULT_STATE_DIR) / "pki"


@dataclass(frozen=True)
class EnginePki:
    """The files of the engine's PKI directory."""

    root: Path

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.root / "private" / "ca.key"

    @property
    def engine_cert(self) -> Path:
        return self.root / "engine.pem"

    @property
    def engine_key(self) -> Path:
        return self.root / "private" / "engine.key"

    @property
    def engine_server_cert(self) -> Path:
        """The engine's own HTTPS certificate (`ferry pki engine-cert`, `ferry engine run --tls`)."""
        return self.root / "engine-server.pem"

    @property
    def engine_server_key(self) -> Path:
        return self.root / "private" / "engine-server.key"

    def host_bundle(self, name: str) -> Path:
        return self.root / "hosts" / check_host_name(name)


@dataclass(frozen=True)
class HostFile:
    """One file of a host's TLS material: where it goes, what it holds, its mode."""

    path: str      # absolute path on the host
    content: str   # "ca", "agent-cert", "agent-key", "libvirt-cert", "libvirt-key"
    mode: int


# The agent's own files (Vdsm keeps the same split under /etc/pki/vdsm).
AGENT_CA = "/etc/pki/ferry/cacert.pem"
AGENT_CERT = "/etc/pki/ferry/certs/agentcert.pem"
AGENT_KEY = "/etc/pki/ferry/keys/agentkey.pem"
# libvirtd's TLS defaults (libvirtd.conf ca_file/cert_file/key_file, and the client side).
LIBVIRT_CA = "/etc/pki/CA/cacert.pem"
LIBVIRT_SERVER_CERT = "/etc/pki/libvirt/servercert.pem"
LIBVIRT_SERVER_KEY = "/etc/pki/libvirt/private/serverkey.pem"
LIBVIRT_CLIENT_CERT = "/etc/pki/libvirt/clientcert.pem"
LIBVIRT_CLIENT_KEY = "/etc/pki/libvirt/private/clientkey.pem"
# QEMU's x509 directory (qemu.conf default_tls_x509_cert_dir, used for migrate_tls_x509_cert_dir).
QEMU_TLS_DIR = "/etc/pki/qemu"

HOST_FILES: tuple[HostFile, ...] = (
    HostFile(AGENT_CA, "ca", 0o644),
    HostFile(AGENT_CERT, "agent-cert", 0o644),
    HostFile(AGENT_KEY, "agent-key", 0o600),
    HostFile(LIBVIRT_CA, "ca", 0o644),
    HostFile(LIBVIRT_SERVER_CERT, "libvirt-cert", 0o644),
    HostFile(LIBVIRT_SERVER_KEY, "libvirt-key", 0o600),
    HostFile(LIBVIRT_CLIENT_CERT, "libvirt-cert", 0o644),
    HostFile(LIBVIRT_CLIENT_KEY, "libvirt-key", 0o600),
    HostFile(f"{QEMU_TLS_DIR}/ca-cert.pem", "ca", 0o644),
    HostFile(f"{QEMU_TLS_DIR}/server-cert.pem", "libvirt-cert", 0o644),
    HostFile(f"{QEMU_TLS_DIR}/server-key.pem", "libvirt-key", 0o600),
    HostFile(f"{QEMU_TLS_DIR}/client-cert.pem", "libvirt-cert", 0o644),
    HostFile(f"{QEMU_TLS_DIR}/client-key.pem", "libvirt-key", 0o600),
)


def bundle_path(root: Path, host_path: str) -> Path:
    """Where a host file lives inside a bundle (or a host's root) directory `root`."""
    return root / PurePosixPath(host_path).relative_to("/")


def check_host_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput("host", f"{name!r} is not a host name (letters, digits, '.', '_', '-'; "
                                   "at most 64 characters)")
    return name


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def check_address(value: object) -> str:
    """A host address for a certificate: an IP address or a DNS name."""
    if isinstance(value, str) and (is_ip(value) or (_HOSTNAME.match(value)
                                                    and not value.rsplit(".", 1)[-1].isdigit())):
        return value  # (a name ending in a number, like 10.0.0.300, is a mistyped IP address)
    raise InvalidInput("address", f"{value!r} is not an IP address or a DNS name")


def subject_alt_names(name: str, address: str) -> list[tuple[str, str]]:
    """SAN entries of a host's certificates: ("dns", ...) / ("ip", ...), no duplicates.

    Clients check the name they connect to: the engine and agents use the host's address
    (agent URL, qemu+tls://ADDRESS, tls.destination = ADDRESS), people may use its name.
    """
    check_host_name(name)
    check_address(address)
    entries: list[tuple[str, str]] = []
    for value in (address, name):
        kind = "ip" if is_ip(value) else "dns"
        if value == name and kind == "dns" and not _HOSTNAME.match(value):
            continue  # a name like "h_1" is fine for Ferry but not a DNS name
        if (kind, value) not in entries:
            entries.append((kind, value))
    return entries


def host_subject(name: str, role: str) -> dict[str, str]:
    """Subject of a host's certificate: CN=<name> with the role as organizational unit."""
    if role not in ("agent", "libvirt"):
        raise InvalidInput("role", f"{role!r} is not a host certificate role (agent, libvirt)")
    return {"CN": check_host_name(name), "O": ORGANIZATION, "OU": f"{role} on {name}"}


def validity(now: datetime, days: int) -> tuple[datetime, datetime]:
    """(not before, not after) of a certificate issued at `now` for `days` days."""
    if days < 1:
        raise InvalidInput("days", f"must be at least 1, got {days}")
    return now - CLOCK_SKEW, now + timedelta(days=days)
