"""`ferry lab ...`: bring lab hosts up and down, boot and verify workload guests, cut and shape
hosts' links."""
from __future__ import annotations

import json
import sys
import time

import click

from ferry.common.errors import InvalidInput, OperationFailed


def _lab(ctx: click.Context):
    from ferry.lab import Lab

    return Lab(ctx.obj.get("lab_id") if ctx.obj else None)


def _progress(msg: str) -> None:
    click.echo(msg, err=True)


@click.group("lab")
@click.option("--lab-id", type=click.IntRange(0, 9), default=None,
              help="Lab instance 0..9 (default: $FERRY_LAB_ID or 0).")
@click.pass_context
def lab(ctx: click.Context, lab_id: int | None) -> None:
    """Real libvirt/QEMU hosts on this machine, with guests whose memory is verified."""
    ctx.ensure_object(dict)
    ctx.obj["lab_id"] = lab_id


@lab.command()
@click.option("--hosts", "-n", type=click.IntRange(1, 4), default=2, show_default=True)
@click.option("--no-agents", is_flag=True, help="Do not start a host agent per host.")
@click.pass_context
def up(ctx: click.Context, hosts: int, no_agents: bool) -> None:
    """Start N lab hosts (and their agents); hosts already running are kept."""
    status = _lab(ctx).up(hosts, progress=_progress, agents=not no_agents)
    _print_status(status)


@lab.command()
@click.pass_context
def down(ctx: click.Context) -> None:
    """Stop every guest, agent and libvirtd of the lab; remove its namespaces, links and bridge."""
    _lab(ctx).down(progress=_progress)


@lab.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Hosts, addresses, versions, accelerator, agents and running VMs."""
    st = _lab(ctx).status()
    if as_json:
        click.echo(json.dumps(st, indent=2))
    else:
        _print_status(st)


def _print_status(st: dict) -> None:
    click.echo(f"lab {st['lab_id']}  accelerator {st['accel']} ({st['accel_reason']})")
    if not st["hosts"]:
        click.echo("  no hosts (run `ferry lab up`)")
    for h in st["hosts"]:
        state = "up" if h["running"] else "DOWN"
        if h.get("cut_off"):
            state += ", CUT OFF"
        if h.get("shape") and h["shape"] != "unshaped":
            state += f", link {h['shape']}"
        versions = (f"libvirt {h['libvirt_version']}, QEMU {h['qemu_version']}"
                    if h.get("libvirt_version")
                    else "(unreachable while cut off)" if h.get("cut_off") else h.get("error", ""))
        click.echo(f"  {h['name']:<12} {h['address']:<13} {state:<12} {versions}")
        agent = h.get("agent")
        if agent is None:
            agent_text = "not available" if not st["agent_available"] else "not started"
        elif agent["running"]:
            extra = f" {' '.join(agent['extra_args'])}" if agent["extra_args"] else ""
            agent_text = f"{agent['url']} (pid {agent['pid']}){extra}"
        else:
            agent_text = f"not running{': ' + agent['error'] if agent.get('error') else ''}"
        click.echo(f"  {'':<12} agent: {agent_text}")
        for vm in h.get("vms", []):
            click.echo(f"  {'':<12} vm {vm['name']} ({vm['state']})")


@lab.command()
@click.argument("vm")
@click.option("--host", default=None, help="Host the VM runs on (default: find it).")
@click.option("--timeout", type=float, default=120.0, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def verify(ctx: click.Context, vm: str, host: str | None, timeout: float, as_json: bool) -> None:
    """Is VM's memory intact? (full scan, heartbeats, bad pages, kernel errors). Exit 1 if not."""
    report = _lab(ctx).verify(vm, host, timeout=timeout)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(f"{vm} on {report.host}: {'INTACT' if report.intact else 'NOT INTACT'}")
        for c in report.checks:
            click.echo(f"  [{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}")
    if not report.intact:
        sys.exit(1)


@lab.command()
@click.argument("name")
@click.option("--host", default="1", show_default=True)
@click.option("--memory", "memory_mib", type=int, default=1024, show_default=True, help="MiB")
@click.option("--fill", "fill_mib", type=int, default=850, show_default=True, help="MiB filled")
@click.option("--dirty", "dirty_mib_s", type=int, default=32, show_default=True, help="MiB/s dirtied")
@click.option("--vcpus", type=int, default=1, show_default=True)
@click.pass_context
def boot(ctx: click.Context, name: str, host: str, memory_mib: int, fill_mib: int,
         dirty_mib_s: int, vcpus: int) -> None:
    """Boot a workload guest (transient) on a lab host and wait for its first heartbeat."""
    g = _lab(ctx).boot_guest(host, name, memory_mib=memory_mib, fill_mib=fill_mib,
                             dirty_mib_s=dirty_mib_s, vcpus=vcpus)
    click.echo(f"{name} running on {g.host.name} ({g.host.uri}); first heartbeat after "
               f"{g.boot_seconds:.1f} s")


@lab.command()
@click.argument("name")
@click.pass_context
def destroy(ctx: click.Context, name: str) -> None:
    """Destroy a guest wherever it runs in the lab."""
    where = _lab(ctx).destroy_guest(name)
    if not where:
        raise OperationFailed(f"VM {name!r} is not defined on any lab host")
    click.echo(f"{name} destroyed on {', '.join(where)}")


@lab.command("cut-off")
@click.argument("host")
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Restore the link after this many seconds (default: stay cut until `restore`).")
@click.pass_context
def cut_off(ctx: click.Context, host: str, seconds: float | None) -> None:
    """Pull HOST's network cable: nothing crosses its link (its agent still reaches its own
    libvirtd). With --seconds, wait and put the cable back (also on Ctrl-C)."""
    the_lab = _lab(ctx)
    the_lab.cut_off(host)
    click.echo(f"{host} cut off" + (f" for {seconds:g} s" if seconds else ""))
    if seconds:
        try:
            time.sleep(seconds)
        finally:
            the_lab.restore(host)
        click.echo(f"{host} restored")


@lab.command()
@click.argument("host")
@click.pass_context
def restore(ctx: click.Context, host: str) -> None:
    """Undo `cut-off`."""
    _lab(ctx).restore(host)
    click.echo(f"{host} restored")


@lab.command()
@click.argument("host")
@click.option("--rate", default=None, help="Bandwidth each way, e.g. 2gbit, 500mbit, 100mbps (bytes/s).")
@click.option("--delay", default=None, help="Added one-way delay, e.g. 1ms (needs the kernel's netem).")
@click.option("--loss", default=None, help="Packets dropped at random each way, e.g. 0.1%.")
@click.option("--clear", is_flag=True, help="Remove all shaping from HOST's link.")
@click.pass_context
def link(ctx: click.Context, host: str, rate: str | None, delay: str | None, loss: str | None,
         clear: bool) -> None:
    """Shape HOST's link (both directions) like a real migration network, or --clear it."""
    from ferry.lab.link import LinkShape

    if clear and (rate or delay or loss):
        raise InvalidInput("clear", "--clear cannot be combined with --rate, --delay or --loss")
    shape = LinkShape() if clear else LinkShape.parse(rate, delay, loss)
    _lab(ctx).link(host, shape)
    click.echo(f"{host} link: {shape.describe()}")


@lab.command()
@click.pass_context
def images(ctx: click.Context) -> None:
    """Build (or reuse) the guest kernel and initramfs."""
    imgs = _lab(ctx).images(_progress)
    click.echo(json.dumps(imgs.to_dict(), indent=2))


@lab.command()
def install() -> None:
    """Install QEMU 10 / libvirt 11 (bookworm-backports) and the lab's tools (needs root)."""
    from ferry.lab import Lab

    rc = Lab.install()
    if rc != 0:
        raise OperationFailed(f"scripts/install-system.sh failed with exit status {rc}")


def register(group: click.Group) -> None:
    group.add_command(lab)
    lab.add_command(__import__("ferry.cli.sim", fromlist=["sim"]).sim)  # `ferry lab sim` (ferry.cli.sim)
