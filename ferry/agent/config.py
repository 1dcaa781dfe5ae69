"""The agent's settings (command-line options of `ferry agent run`, and the allowlists below).

What may reach libvirt is the agent's decision, never the request's (ferry.agent.vm_checks):
the emulators it runs, the directories kernels/initrds come from, where console logs go.
Defaults: the distribution's qemu-system binary for this machine, /var/lib/ferry/images, and
libvirt's QEMU log directory; the environment can replace them for the agent process
(FERRY_AGENT_EMULATORS, FERRY_AGENT_IMAGES_DIRS: ':'-separated; FERRY_AGENT_CONSOLE_LOG_DIR),
e.g. the lab points its agents at the lab's guest images.
"""
from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field

from ferry.agent.conn_limits import DEFAULT_MAX_PER_CLIENT, DEFAULT_READ_TIMEOUT
from ferry.agent.hard_limits import VDSM_MAX_TIME_PER_GIB_S, VDSM_PROGRESS_TIMEOUT_S
from ferry.agent.limits import DEFAULT_MAX_INCOMING, default_outgoing_limit
from ferry.agent.vm_checks import VmLimits

DEFAULT_PORT = 54321
DEFAULT_IMAGES_DIR = "/var/lib/ferry/images"
DEFAULT_CONSOLE_LOG_DIR = "/var/log/libvirt/qemu"


def _env_list(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    value = os.environ.get(name, "")
    return tuple(p for p in value.split(":") if p) or default


def default_emulators() -> tuple[str, ...]:
    return _env_list("FERRY_AGENT_EMULATORS", (f"/usr/bin/qemu-system-{platform.machine() or 'x86_64'}",))


def default_images_dirs() -> tuple[str, ...]:
    return _env_list("FERRY_AGENT_IMAGES_DIRS", (DEFAULT_IMAGES_DIR,))


def default_console_log_dir() -> str:
    return os.environ.get("FERRY_AGENT_CONSOLE_LOG_DIR") or DEFAULT_CONSOLE_LOG_DIR


@dataclass(frozen=True)
class AgentConfig:
    address: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    libvirt_uri: str = "qemu:///system"
    dev: bool = False                   # plain HTTP and qemu+tcp:// between libvirt daemons
    old_agent: bool = False             # behave like an agent that does not know zero-copy
    zerocopy_disabled: str | None = None  # the admin turned zero-copy off here, for this reason
    status_interval: float = 1.0        # job-stats poll period (s)
    migrate_limit_retry: float = 10.0   # wait before asking a full destination again (s)
    max_outgoing: int = default_outgoing_limit()
    max_incoming: int = DEFAULT_MAX_INCOMING
    incoming_timeout: float = 600.0     # drop an expected incoming VM that never arrived (s)
    destination_timeout: float = 30.0   # JSON-RPC timeout towards other agents (s)
    # Vdsm's hard limits (ferry.agent.hard_limits): s per GiB of memory, s without a new low
    max_time_per_gib: int = VDSM_MAX_TIME_PER_GIB_S
    progress_timeout: int = VDSM_PROGRESS_TIMEOUT_S
    pki_dir: str = "/etc/pki/ferry"     # cacert.pem, certs/agentcert.pem, keys/agentkey.pem (not in --dev)
    emulators: tuple[str, ...] = field(default_factory=default_emulators)
    images_dirs: tuple[str, ...] = field(default_factory=default_images_dirs)
    console_log_dir: str = field(default_factory=default_console_log_dir)
    read_timeout: float = DEFAULT_READ_TIMEOUT        # s for a request's headers and body
    max_connections_per_client: int = DEFAULT_MAX_PER_CLIENT

    @property
    def vm_limits(self) -> VmLimits:
        return VmLimits(tuple(self.emulators), tuple(self.images_dirs), self.console_log_dir)

    @property
    def libvirt_transport(self) -> str:
        return "tcp" if self.dev else "tls"

    @property
    def tls_files(self):
        """The agent's TLS files (server side, and client side towards other agents)."""
        from ferry.pki.tls import agent_tls_files

        return agent_tls_files(self.pki_dir)
