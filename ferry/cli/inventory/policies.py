"""`ferry policy ...`: migration policies, the built-ins (read-only) and custom ones from YAML/JSON."""
from __future__ import annotations

import click

from ferry.cli.inventory.common import (
    emit,
    engine_client,
    fields,
    json_option,
    list_show_remove,
    onoff,
    read_data_file,
    table,
)
from ferry.common.errors import InvalidInput


def _schedule_text(p: dict) -> str:
    if p.get("legacy"):
        return "(the agent's own downtime steps)"
    parts = [f"init {a['name']} {' '.join(map(str, a['params']))}".strip() for a in p.get("init", [])]
    parts += [f"{s['limit']}: {s['action']['name']} {' '.join(map(str, s['action']['params']))}".strip()
              for s in p.get("stalling", [])]
    parts += [f"last {a['name']} {' '.join(map(str, a['params']))}".strip() for a in p.get("last_items", [])]
    return ", ".join(parts) or "(none)"


def _render_policy(p: dict) -> None:
    fields(f"policy {p['name']}", [
        ("id", p["id"]), ("built-in", "yes" if p["builtin"] else "no"), ("description", p["description"]),
        ("max_migrations", p["max_migrations"]), ("auto_converge", onoff(p["auto_converge"])),
        ("compression", onoff(p["compression"])), ("guest_events", onoff(p["guest_events"])),
        ("zerocopy", onoff(p["zerocopy"])), ("schedule", _schedule_text(p)),
    ])


def _render_policies(ps: list[dict]) -> None:
    table("migration policies", ["name", "id", "built-in", "max migrations", "zero-copy", "auto-converge"], [
        [p["name"], p["id"], "yes" if p["builtin"] else "no", p["max_migrations"], onoff(p["zerocopy"]),
         onoff(p["auto_converge"])] for p in ps])


@click.group("policy")
def policy_group() -> None:
    """Migration policies: the built-ins (read-only) and custom ones."""


def _policy_file(path: str, name: str | None) -> dict:
    data = read_data_file(path, "file")
    if not isinstance(data, dict):
        raise InvalidInput("file", f"{path} must hold one policy object (name, max_migrations, init, "
                                   "stalling, last_items, ...)")
    if name is not None:
        data["name"] = name
    return data


@policy_group.command("add")
@click.argument("file")
@click.option("--name", default=None, help="Use this name instead of the file's.")
@json_option
def policy_add(file, name, as_json):
    """Add a custom policy from a YAML/JSON FILE ('-' = stdin)."""
    emit(engine_client().post("/api/policies", _policy_file(file, name)), as_json, _render_policy)


@policy_group.command("set")
@click.argument("ref")
@click.argument("file")
@json_option
def policy_set(ref, file, as_json):
    """Replace a custom policy's contents with a YAML/JSON FILE (its id stays)."""
    emit(engine_client().put(f"/api/policies/{ref}", _policy_file(file, None)), as_json, _render_policy)


list_show_remove(policy_group, noun="policy", path="/api/policies", render_one=_render_policy,
                 render_many=_render_policies, list_help="List policies, built-ins first.",
                 show_help="Show a policy (by name or id).", remove_help="Remove a custom policy that nothing uses.",
                 arg="ref")
