"""`ferry agent run ...` (the host agent) and `ferry agent call ADDRESS VERB [JSON]` (for admins)."""
from __future__ import annotations

import json

import click

from ferry.common.errors import InvalidInput, OperationFailed


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


@click.command("call")
@click.argument("address")
@click.argument("verb")
@click.argument("params", required=False, default="{}")
@click.option("--timeout", default=30.0, show_default=True, type=float)
@click.option("--dev", is_flag=True, help="The agent runs in --dev mode (plain http://).")
def call_command(address, verb, params, timeout, dev):
    """Call VERB on the agent at ADDRESS (host[:port] or URL) with JSON PARAMS; prints the JSON result.

    Over https:// the engine's client certificate (FERRY_PKI_DIR, default /var/lib/ferry/pki)
    is presented."""
    from ferry.common.jsonrpc import JsonRpcClient, JsonRpcError

    try:
        parsed = json.loads(params)
    except ValueError as exc:
        raise InvalidInput("PARAMS", f"is not JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise InvalidInput("PARAMS", "must be a JSON object")
    scheme = "http" if dev else "https"
    url = address if address.startswith("http") else f"{scheme}://{address if ':' in address else address + ':54321'}"
    try:
        result = JsonRpcClient(url, timeout=timeout).call(verb, parsed)
    except JsonRpcError as exc:
        raise _CallFailed(exc) from None
    click.echo(json.dumps(result, indent=2, sort_keys=True))


class _CallFailed(OperationFailed):
    def __init__(self, exc):
        detail = f" {json.dumps(exc.data)}" if exc.data else ""
        super().__init__(f"{exc.message} (code {exc.code}){detail}")


def register(group: click.Group) -> None:
    @group.group("agent")
    def agent() -> None:
        """The host agent: run it, or call its JSON-RPC verbs."""

    agent.add_command(run_command)
    agent.add_command(call_command)



