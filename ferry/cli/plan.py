"""`ferry plan`: the migration planner's dry run, from a scenario file or on live inventory.

    ferry plan --scenario FILE [--policy P] [--forecast] [--json]   no engine, no agents
    ferry plan VM [--to HOST] [--policy P] [--forecast] [--json]    the engine plans on its inventory

Both print the VM.migrate parameters, the libvirt flags the agent would pass, and the
explanation of every value that differs from what the admin set; with --forecast also whether
the migration will converge, abort or switch to post-copy, when and with what downtime
(docs/forecast.md; the lines are `render_forecast`'s).
"""
from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import click

from ferry.common.errors import InvalidInput, OperationFailed

PARAM_ORDER = ("dst", "dstqemu", "method", "tunneled", "abortOnError", "encrypted", "compressed",
               "autoConverge", "enableGuestEvents", "parallel", "zerocopy", "maxBandwidth",
               "outgoingLimit", "incomingLimit", "downtime", "convergenceSchedule")


def _value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _action(action: dict) -> str:
    params = action.get("params") or []
    return action["name"] + (f" {' '.join(str(p) for p in params)}" if params else "")


def format_schedule(schedule: dict) -> str:
    """'init: setDowntime 300 | 1: setDowntime 400 | ... | last: abort' for one table cell."""
    parts = [f"init: {_action(a)}" for a in schedule.get("init", [])]
    for item in schedule.get("stalling", []):
        limit = item["limit"]
        parts.append(f"{'last' if limit == -1 else f'after {limit}'}: {_action(item['action'])}")
    return " | ".join(parts) or "(empty)"


def render_plan(plan: dict) -> str:
    """A plan's JSON form as text an admin reads top to bottom."""
    lines = []
    policy = plan.get("policy") or {}
    vm = plan.get("vm") or "VM"
    lines.append(f"Plan for {vm}: {plan.get('source')} → {plan.get('destination')}, "
                 f"policy {policy.get('name')} ({policy.get('origin')})")
    lines.append("")
    lines.append("VM.migrate parameters")
    params = plan.get("params") or {}
    keys = [k for k in PARAM_ORDER if k in params] + sorted(k for k in params if k not in PARAM_ORDER)
    width = max((len(k) for k in keys), default=0)
    for key in keys:
        value = params[key]
        text = format_schedule(value) if key == "convergenceSchedule" and isinstance(value, dict) else _value(value)
        lines.append(f"  {key:<{width}}  {text}")
    lines.append("")
    flags = plan.get("libvirt_flags")
    lines.append("libvirt flags")
    if flags is None:
        lines.append("  (not available)")
    else:
        lines.append("  " + " | ".join(flags))
        typed = plan.get("libvirt_typed_params") or {}
        if typed:
            lines.append("  typed params: " + ", ".join(f"{k}={_value(v)}" for k, v in typed.items()))
    for note in (*(plan.get("flag_notes") or []), *(plan.get("flag_warnings") or [])):
        lines.append(f"  ! {note}")
    lines.append("")
    explanation = plan.get("explanation") or []
    lines.append("Explanation (values that differ from what was set)")
    if not explanation:
        lines.append("  (none: everything is as set)")
    for e in explanation:
        lines.append(f"  - {e['field']}: {e['from']} → {e['to']}: {e['reason']}")
    notes = plan.get("notes") or []
    if notes:
        lines.append("")
        lines.append("How values were derived")
        lines.extend(f"  - {n}" for n in notes)
    return "\n".join(lines)


def _seconds(x) -> str:
    return "never" if x is None else f"{x:.1f} s"


OUTCOME_WORDS = {"converge": "converges", "abort": "aborts", "postcopy": "switches to post-copy"}


def render_forecast(fc: dict, max_steps: int = 12) -> str:
    """A forecast object as lines: the verdict, the range, the inputs and the iterations."""
    inp = fc.get("inputs") or {}
    outcome = fc.get("outcome")
    total = fc.get("totalSeconds")
    rng = fc.get("range") or {}
    if outcome == "abort" and total is None:
        verdict = "never converges (nothing in the schedule ends it):"
    elif outcome == "abort":
        verdict = f"aborts after {_seconds(total)},"
    else:
        dt = fc.get("downtimeMs")
        verdict = f"{OUTCOME_WORDS.get(outcome, outcome)} in {_seconds(total)}" + (
            f", downtime {dt:.0f} ms," if isinstance(dt, int | float) else ",")
    lines = ["Forecast", f"  {verdict} {fc.get('iterations')} iteration(s)",
             f"  range {_seconds(rng.get('low'))} .. {_seconds(rng.get('high'))}"]
    if fc.get("reason"):
        lines.append(f"  why: {fc['reason']}")
    dirty = inp.get("dirtyRateRangeMiBs") or {}
    lines.append(f"  inputs: memory {inp.get('memoryMiB'):.0f} MiB, touched {inp.get('touchedMiB'):.0f} MiB, "
                 f"dirty {inp.get('dirtyRateMiBs'):.1f} MiB/s ({dirty.get('low', 0):.1f}-{dirty.get('high', 0):.1f}), "
                 f"bandwidth {inp.get('bandwidthMiBs'):.0f} MiB/s ({inp.get('bandwidthSource')}), "
                 f"auto-converge {'on' if inp.get('autoConverge') else 'off'}")
    steps = fc.get("steps") or []
    if steps:
        lines.append("  iteration  send MiB  seconds  left MiB  limit ms  fires")
    for s in steps[:max_steps]:
        lines.append(f"  {s['iteration']:>9}  {s['sendMiB']:>8.1f}  {s['seconds']:>7.2f}  {s['remainingMiB']:>8.1f}"
                     f"  {s['downtimeLimitMs']:>8.0f}  {s.get('fires') or ''}")
    if len(steps) > max_steps:
        lines.append(f"  ... {len(steps) - max_steps} more")
    return "\n".join(lines)


def render_recommendation(rec: dict) -> str:
    """The ranking as a table and the recommendation with its reason."""
    lines = [f"Policies for {rec.get('vm')}: {rec.get('source')} → {rec.get('destination')}, best first", ""]
    rows = rec.get("ranking") or []
    width = max((len(r["policy"]["name"]) for r in rows), default=6)
    lines.append(f"  {'policy':<{width}}  outcome   total      downtime")
    for r in rows:
        total = "–" if r.get("outcome") is None else _seconds(r.get("totalSeconds"))
        dt = r.get("downtimeMs")
        lines.append(f"  {r['policy']['name']:<{width}}  {str(r.get('outcome') or 'n/a'):<8}  {total:<9}  "
                     f"{'–' if dt is None else f'{dt:.0f} ms'}")
    best = rec.get("recommended")
    lines += ["", f"Recommended: {best['name'] if best else 'none'}", f"  why: {rec.get('reason')}"]
    return "\n".join(lines)


def _scenario_plan(path: str, policy: str | None, forecast: bool = False, recommend: bool = False) -> dict:
    from ferry.engine.scenario import load_scenario_text

    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput("--scenario", f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput("--scenario", f"cannot read {path}: {exc}") from None
    try:
        scenario = load_scenario_text(text)
    except InvalidInput as exc:
        raise InvalidInput(f"{path}: {exc.field}", exc.reason) from None
    if forecast or recommend:
        try:
            return scenario.recommend() if recommend else scenario.forecast(policy)
        except InvalidInput as exc:
            raise InvalidInput(f"{path}: {exc.field}", exc.reason) from None
    return scenario.plan(policy).to_dict()


def _live_plan(vm: str, to_host: str | None, policy: str | None, forecast: bool = False,
               recommend: bool = False) -> dict:
    """Asks the engine: POST /api/vms/{vm}/plan[?forecast=true] with {"to": HOST|null, "policy": P|null}."""
    try:
        from ferry.client import engine_client
    except ModuleNotFoundError as exc:
        if exc.name != "ferry.client.engine_client":
            raise
        raise OperationFailed("planning on live inventory needs the engine client, which is not "
                              "installed; use --scenario FILE") from None
    with engine_client.EngineClient.from_env() as client:
        if recommend:
            return client.post(f"/api/vms/{quote(vm, safe='')}/recommend", {"to": to_host})
        path = f"/api/vms/{quote(vm, safe='')}/plan" + ("?forecast=true" if forecast else "")
        return client.post(path, {"to": to_host, "policy": policy})


@click.command("plan")
@click.argument("vm", required=False)
@click.option("--scenario", "scenario", metavar="FILE", help="Plan from a scenario file (YAML or JSON), no engine.")
@click.option("--to", "to_host", metavar="HOST", help="Destination host (live mode; default: the engine chooses).")
@click.option("--policy", metavar="P", help="Plan with this policy (name or id) instead of the effective one.")
@click.option("--forecast", is_flag=True, help="Also forecast it: converge/abort/post-copy, time, downtime.")
@click.option("--recommend", is_flag=True, help="Forecast every policy for this workload and recommend one.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def plan_command(vm, scenario, to_host, policy, forecast, recommend, as_json):
    """Show how VM would be migrated: VM.migrate parameters, libvirt flags and why.

    Either VM (the engine plans on its inventory) or --scenario FILE (see
    docs/planner-scenarios.md).
    """
    if scenario and vm:
        raise InvalidInput("VM", "give either a VM or --scenario FILE, not both")
    if recommend and policy:
        raise InvalidInput("--policy", "not with --recommend, which forecasts every policy")
    if scenario:
        if to_host:
            raise InvalidInput("--to", "only with a VM: a scenario names its destination host")
        result = _scenario_plan(scenario, policy, forecast, recommend)
    elif vm:
        result = _live_plan(vm, to_host, policy, forecast, recommend)
    else:
        raise InvalidInput("VM", "give a VM name or --scenario FILE")
    if as_json:
        click.echo(json.dumps(result, indent=2))
    elif recommend:
        click.echo(render_recommendation(result))
    else:
        click.echo(render_plan(result))
        if result.get("forecast"):
            click.echo("")
            click.echo(render_forecast(result["forecast"]))


def register(group: click.Group) -> None:
    group.add_command(plan_command)
