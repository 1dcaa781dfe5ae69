"""The agent's settings (command-line options of `ferry agent run`)."""
from __future__ import annotations

from dataclasses import dataclass

from ferry.agent.hard_limits import VDSM_MAX_TIME_PER_GIB_S, VDSM_PROGRESS_TIMEOUT_S
from ferry.agent.limits import DEFAULT_MAX_INCOMING, default_outgoing_limit

DEFAULT_PORT = 54321


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

    @property
    def libvirt_transport(self) -> str:
        return "tcp" if self.dev else "tls"

    @property
    def tls_files(self):
        """The agent's TLS files (server side, and client side towards other agents)."""
        from ferry.pki.tls import agent_tls_files

        return agent_tls_files(self.pki_dir)
