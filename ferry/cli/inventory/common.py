"""What every inventory command shares: the engine client, table/JSON output, the short forms
of settings, and the list/show/remove commands each resource has (one helper, not four copies).
"""
from __future__ import annotations

import json
import pathlib
from collections.abc import Callable, Sequence
from typing import Any

import click

from ferry.common.errors import InvalidInput
from ferry.engine.options import BandwidthMode, BandwidthSetting, ParallelSetting, short_form

INHERIT = "inherit"


def engine_client():
    """The engine's client (FERRY_ENGINE_URL / FERRY_ENGINE_TOKEN or the config file)."""
    from ferry.client.engine_client import EngineClient

    return EngineClient()


def json_option(f: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(f)


def emit(data: Any, as_json: bool, render: Callable[[Any], None]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=False))
    else:
        render(data)


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    out = Table(title=title, show_lines=False)
    for c in columns:
        out.add_column(c, overflow="fold")
    for r in rows:
        out.add_row(*["-" if v is None else str(v) for v in r])
    console = Console()
    if not console.is_terminal:  # piped or captured: do not fold cells at 80 columns
        console = Console(width=200)
    console.print(out)


def fields(title: str, pairs: list[tuple[str, Any]]) -> None:
    table(title, ["field", "value"], [[k, v] for k, v in pairs])


def list_show_remove(group: click.Group, *, noun: str, path: str, render_one: Callable[[Any], None],
                     render_many: Callable[[Any], None], list_help: str, show_help: str, remove_help: str,
                     arg: str = "name", filters: Sequence[str] = ()) -> None:
    """Add `list [--FILTER ...]` (GET PATH), `show ARG` (GET PATH/ARG) and `remove ARG`
    (DELETE PATH/ARG, then "NOUN ARG removed") to a resource's command group."""

    def list_(as_json: bool, **params: Any) -> None:
        emit(engine_client().get(path, params=params), as_json, render_many)

    command = json_option(list_)
    for name in reversed(filters):
        command = click.option(f"--{name}", default=None)(command)
    group.command("list", help=list_help)(command)

    def show(as_json: bool, **key: str) -> None:
        emit(engine_client().get(f"{path}/{key[arg]}"), as_json, render_one)

    group.command("show", help=show_help)(click.argument(arg)(json_option(show)))

    def remove(**key: str) -> None:
        engine_client().delete(f"{path}/{key[arg]}")
        click.echo(f"{noun} {key[arg]} removed")

    group.command("remove", help=remove_help)(click.argument(arg)(remove))


def nothing_to_change() -> InvalidInput:
    return InvalidInput("options", "nothing to change: give at least one option (see --help)")


def parse_parallel(text: str | None, field: str = "parallel") -> dict | None:
    if text is None:
        return None
    s = ParallelSetting.parse(text, field)
    return {"mode": s.mode.value, "connections": s.connections}


def parse_bandwidth(text: str | None) -> dict | None:
    if text is None:
        return None
    mode, mbps = short_form(text)
    try:
        bw_mode = BandwidthMode(mode)
    except ValueError:
        raise InvalidInput("bandwidth", f"unknown bandwidth {text!r} (AUTO, HYPERVISOR_DEFAULT, "
                                        "CUSTOM:MBPS or a number of Mbps)") from None
    if isinstance(mbps, str):
        raise InvalidInput("bandwidth.custom_mbps", f"must be a positive number of Mbps, got {mbps!r}")
    setting = BandwidthSetting(bw_mode, mbps)
    return {"mode": setting.mode.value, "custom_mbps": setting.custom_mbps}


def tristate(value: str | None) -> Any:
    """on/off/inherit -> True/False/None; absent -> the marker that leaves it unchanged."""
    if value is None:
        return UNSET
    return {"on": True, "off": False, INHERIT: None}[value.lower()]


UNSET = object()
TRISTATE = click.Choice(["on", "off", INHERIT], case_sensitive=False)


def parallel_text(p: dict | None) -> str:
    if not p:
        return "inherit"
    return f"CUSTOM:{p['connections']}" if p["mode"] == "CUSTOM" else p["mode"]


def bandwidth_text(b: dict) -> str:
    return f"CUSTOM:{b['custom_mbps']} Mbps" if b["mode"] == "CUSTOM" else b["mode"]


def onoff(v: Any) -> str:
    return "inherit" if v is None else ("on" if v else "off")


def read_data_file(path: str, field: str) -> Any:
    import yaml

    p = pathlib.Path(path)
    try:
        text = sys_stdin_or_file(p)
    except OSError as exc:
        raise InvalidInput(field, f"cannot read {path}: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(field, f"{path} is not valid YAML/JSON: {exc}") from None


def sys_stdin_or_file(p: pathlib.Path) -> str:
    if str(p) == "-":
        return click.get_text_stream("stdin").read()
    return p.read_text()
