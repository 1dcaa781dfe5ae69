"""`ferry agent run ...`: the host agent's process command line (also `python -m ferry.agent run`).

The agent package owns it, so the agent starts without the `ferry` CLI; `ferry agent run` is the
same command, registered by ferry.cli.agent. Options are checked here, naming the option.
"""
from __future__ import annotations

import click

from ferry.common.errors import InvalidInput


@click.command("run")
@click.option("--address", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=54321, show_default=True, type=int)
@click.option("--libvirt-uri", default="qemu:///system", show_default=True)
@click.option("--log-file", default=None, help="Also log to this file.")
@click.option("--dev", is_flag=True, help="Plain HTTP without authentication, on a loopback address only; "
              "libvirt daemons talk qemu+tcp:// (lab/development).")
@click.option("--pki-dir", default="/etc/pki/ferry", show_default=True,
              help="The host's enrollment files: cacert.pem, certs/agentcert.pem, keys/agentkey.pem.")
@click.option("--old-agent", is_flag=True, help="Behave like an agent that does not know zero-copy.")
@click.option("--disable-zerocopy", "zerocopy_disabled", default=None, metavar="REASON",
              help="Report zero-copy migrations unsupported on this host (and never use them), for REASON.")
@click.option("--status-interval", default=1.0, show_default=True, type=float,
              help="Seconds between job-stats polls during a migration.")
@click.option("--migrate-limit-retry", default=10.0, show_default=True, type=float,
              help="Seconds before asking a full destination again.")
@click.option("--max-outgoing", default=None, type=int, help="Outgoing migrations at once (default min(2, cores)).")
@click.option("--max-incoming", default=2, show_default=True, type=int, help="Incoming migrations at once.")
@click.option("--max-time-per-gib", default=64, show_default=True, type=int,
              help="Abort an unscheduled migration running longer than this many seconds per GiB of memory "
                   "(Vdsm's migration_max_time_per_gib_mem; 0 = off).")
@click.option("--progress-timeout", default=240, show_default=True, type=int,
              help="Abort an unscheduled migration whose remaining data has not reached a new low for this many "
                   "seconds (Vdsm's migration_progress_timeout; 0 = off).")
@click.option("--verbose", is_flag=True)
def run_command(address, port, libvirt_uri, log_file, dev, pki_dir, old_agent, zerocopy_disabled, status_interval,
                migrate_limit_retry, max_outgoing, max_incoming, max_time_per_gib, progress_timeout, verbose):
    """Run the host agent (JSON-RPC 2.0 at https://ADDRESS:PORT/jsonrpc, mutual TLS)."""
    from ferry.agent.config import AgentConfig
    from ferry.agent.limits import default_outgoing_limit
    from ferry.agent.runner import run_agent, setup_logging

    if zerocopy_disabled is not None and not zerocopy_disabled.strip():
        raise InvalidInput("--disable-zerocopy", "give the reason (it is shown to the engine's users)")
    if status_interval <= 0:
        raise InvalidInput("--status-interval", f"must be above 0, got {status_interval}")
    if migrate_limit_retry <= 0:
        raise InvalidInput("--migrate-limit-retry", f"must be above 0, got {migrate_limit_retry}")
    for name, value in (("--max-outgoing", max_outgoing), ("--max-incoming", max_incoming)):
        if value is not None and value < 1:
            raise InvalidInput(name, f"must be at least 1, got {value}")
    for name, value in (("--max-time-per-gib", max_time_per_gib), ("--progress-timeout", progress_timeout)):
        if value < 0:
            raise InvalidInput(name, f"must be 0 (off) or more seconds, got {value}")
    setup_logging(log_file, verbose)
    if dev:
        from ferry.agent.server import check_dev_address

        check_dev_address(address)
    config = AgentConfig(address=address, port=port, libvirt_uri=libvirt_uri, dev=dev, pki_dir=pki_dir,
                         old_agent=old_agent,
                         zerocopy_disabled=zerocopy_disabled,
                         status_interval=status_interval, migrate_limit_retry=migrate_limit_retry,
                         max_outgoing=max_outgoing or default_outgoing_limit(), max_incoming=max_incoming,
                         max_time_per_gib=max_time_per_gib, progress_timeout=progress_timeout)
    run_agent(config)
