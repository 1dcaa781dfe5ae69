"""`ferry agent run ...` (the host agent, from ferry.agent.cli) and `ferry agent call ADDRESS VERB [JSON]` (for admins)."""
from __future__ import annotations

import json

import click

from ferry.agent.cli import run_command
from ferry.common.errors import InvalidInput, OperationFailed


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
        from ferry.pki import engine_client_tls

        result = JsonRpcClient(url, timeout=timeout, tls=engine_client_tls()).call(verb, parsed)
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



