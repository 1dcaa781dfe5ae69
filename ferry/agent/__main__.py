"""`python -m ferry.agent run ...`: the host agent process (same options as `ferry agent run`)."""
from __future__ import annotations

import click

from ferry.agent.cli import run_command


@click.group()
def main() -> None:
    """Ferry host agent."""


main.add_command(run_command, "run")

if __name__ == "__main__":
    import sys

    from ferry.common.errors import FerryError

    try:
        main(prog_name="python -m ferry.agent", standalone_mode=True)
    except FerryError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
