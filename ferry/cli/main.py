"""Entry point of the `ferry` command: one click group, each area adds its own commands.

Each area (lab, agent, engine inventory, plan, migrate, bench, ...) lives in its own module
under ferry.cli and exposes `register(group)`; a module that is missing or fails to import
does not take the other commands down with it.
"""
from __future__ import annotations

import importlib
import sys

import click

# Modules under ferry.cli that add commands. Order is the order of `ferry --help`.
AREAS = ("lab", "agent", "engine", "inventory", "plan", "migrate", "maintenance", "events", "pki", "bench", "demo")


class FerryGroup(click.Group):
    """Turns a ferry error into a clear message and exit status instead of a traceback."""

    def invoke(self, ctx: click.Context):
        from ferry.common.errors import FerryError

        try:
            return super().invoke(ctx)
        except FerryError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=FerryGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ferry")
def cli() -> None:
    """Ferry: live migration of KVM virtual machines, zero-copy for very large VMs."""


def _register_areas() -> None:
    for area in AREAS:
        try:
            module = importlib.import_module(f"ferry.cli.{area}")
        except ModuleNotFoundError as exc:
            if exc.name == f"ferry.cli.{area}":
                continue
            raise
        module.register(cli)


_register_areas()


def main() -> None:
    cli(prog_name="ferry")


if __name__ == "__main__":
    main()
