"""Link shaping per lab host: rate, delay and loss on its cable, so the lab can stand in for a
real migration network (`ferry lab link HOST --rate 2gbit --delay 1ms --loss 0.1%`).

Why here: a migration over a veth pair runs as fast as the CPU copies, which no real network
does. A shape applies to both directions of the host's link: on the outer end of its veth
(traffic towards the host) and on eth0 inside its namespace (traffic from the host), so a
shaped host sends and receives at most `rate`.

How, with what this kernel offers: a rate alone is a token bucket (`tbf`); loss is two
nftables rules dropping that share of packets at random (`numgen`) where they arrive: at the
ingress of the outer veth end (from the host; table `netdev <veth>_loss` in the machine's
namespace) and at the ingress of eth0 (to the host; in the host's namespace). Dropping on
arrival is what a lossy wire does: the sender's stack learns nothing and retransmits (a drop
on the way out would hand TCP a local error instead). A delay needs the `netem` qdisc, which
then carries rate and loss too. Kernels without sch_netem (this machine's) cannot add delay:
the lab says so, naming the field.

Parsing and command building are pure; `apply_shape` / `clear_shape` run them.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

from ferry.common.errors import InvalidInput, OperationFailed
from ferry.lab.network import INNER_IFACE, netns_exec
from ferry.lab.plan import HostPlan

MAX_RATE_BPS = 100 * 10**9
MIN_RATE_BPS = 8 * 10**3
MAX_DELAY_MS = 10_000.0
LOSS_TABLE = "ferry_link"  # in the host's namespace
LOSS_SCALE = 100_000  # loss resolution: 0.001 %
TBF_LATENCY_MS = 50
TBF_MIN_BURST = 128 * 1024  # above a GSO packet over veth (64 KiB)

_RATE_UNITS = {"bit": 1, "kbit": 10**3, "mbit": 10**6, "gbit": 10**9, "tbit": 10**12,
               "bps": 8, "kbps": 8 * 10**3, "mbps": 8 * 10**6, "gbps": 8 * 10**9}
_DELAY_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
_NUM_UNIT = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z%]*)\s*$")


def parse_rate(text: str) -> int:
    """'2gbit', '500mbit', '100mbps' (bytes/s, as tc writes it) -> bits per second."""
    m = _NUM_UNIT.match(str(text))
    unit = m.group(2).lower() if m else ""
    if not m or unit not in _RATE_UNITS:
        raise InvalidInput("rate", f"{text!r} is not a rate: a number and a unit "
                                   f"({', '.join(_RATE_UNITS)}), e.g. 2gbit")
    bps = int(float(m.group(1)) * _RATE_UNITS[unit])
    if not MIN_RATE_BPS <= bps <= MAX_RATE_BPS:
        raise InvalidInput("rate", f"{text!r} is outside 8kbit..100gbit")
    return bps


def parse_delay(text: str) -> float:
    """'1ms', '250us', '0.5s' -> milliseconds (0 < delay <= 10 s)."""
    m = _NUM_UNIT.match(str(text))
    unit = m.group(2).lower() if m else ""
    if not m or unit not in _DELAY_UNITS:
        raise InvalidInput("delay", f"{text!r} is not a delay: a number and a unit (us, ms, s), e.g. 1ms")
    ms = float(m.group(1)) * _DELAY_UNITS[unit]
    if not 0 < ms <= MAX_DELAY_MS:
        raise InvalidInput("delay", f"{text!r} must be above 0 and at most 10s")
    return ms


def parse_loss(text: str) -> float:
    """'0.1%' or '0.1' -> percent of packets dropped (0 < loss < 100)."""
    m = _NUM_UNIT.match(str(text))
    if not m or m.group(2) not in ("", "%"):
        raise InvalidInput("loss", f"{text!r} is not a loss: a percentage, e.g. 0.1%")
    pct = float(m.group(1))
    if not 0 < pct < 100:
        raise InvalidInput("loss", f"{text!r} must be above 0% and below 100% (use cut-off for 100%)")
    if round(pct * LOSS_SCALE / 100) < 1:
        raise InvalidInput("loss", f"{text!r} is below the resolution of {100 / LOSS_SCALE}%")
    return pct


@dataclass(frozen=True)
class LinkShape:
    """What a host's link does to its traffic; all None is an unshaped link."""

    rate_bps: int | None = None
    delay_ms: float | None = None
    loss_pct: float | None = None

    @classmethod
    def parse(cls, rate: str | None = None, delay: str | None = None, loss: str | None = None) -> LinkShape:
        shape = cls(parse_rate(rate) if rate is not None else None,
                    parse_delay(delay) if delay is not None else None,
                    parse_loss(loss) if loss is not None else None)
        if shape.is_clear:
            raise InvalidInput("link", "give at least one of --rate, --delay, --loss (or --clear)")
        return shape

    @property
    def is_clear(self) -> bool:
        return self.rate_bps is None and self.delay_ms is None and self.loss_pct is None

    @property
    def needs_netem(self) -> bool:
        return self.delay_ms is not None

    def describe(self) -> str:
        parts = []
        if self.rate_bps is not None:
            parts.append(f"rate {format_rate(self.rate_bps)}")
        if self.delay_ms is not None:
            parts.append(f"delay {self.delay_ms:g}ms")
        if self.loss_pct is not None:
            parts.append(f"loss {self.loss_pct:g}%")
        return ", ".join(parts) or "unshaped"

    def to_dict(self) -> dict:
        return {"rate_bps": self.rate_bps, "delay_ms": self.delay_ms, "loss_pct": self.loss_pct}

    @classmethod
    def from_dict(cls, d: dict | None) -> LinkShape:
        d = d or {}
        return cls(d.get("rate_bps"), d.get("delay_ms"), d.get("loss_pct"))


def format_rate(bps: int) -> str:
    for unit, scale in (("gbit", 10**9), ("mbit", 10**6), ("kbit", 10**3)):
        if bps >= scale and bps % scale == 0:
            return f"{bps // scale}{unit}"
    return f"{bps}bit"


def qdisc_args(shape: LinkShape) -> list[str] | None:
    """The root qdisc (tc words after `root`) for one direction, or None (default qdisc)."""
    if shape.needs_netem:
        args = ["netem", "delay", f"{shape.delay_ms:g}ms", "limit", "100000"]
        if shape.rate_bps is not None:
            args += ["rate", f"{shape.rate_bps}bit"]
        if shape.loss_pct is not None:
            args += ["loss", f"{shape.loss_pct:g}%"]
        return args
    if shape.rate_bps is not None:
        burst = max(TBF_MIN_BURST, shape.rate_bps // 8 // 200)  # 5 ms of traffic
        return ["tbf", "rate", f"{shape.rate_bps}bit", "burst", str(burst),
                "latency", f"{TBF_LATENCY_MS}ms"]
    return None


def root_loss_table(host: HostPlan) -> str:
    """The machine-side table dropping the host's outgoing packets (one per host)."""
    return f"{host.veth}_loss"


def loss_rulesets(host: HostPlan, shape: LinkShape) -> tuple[str, str] | None:
    """nft scripts (machine side, host side) dropping loss_pct of the packets arriving over the
    host's link each way (None when netem does the loss, or there is none)."""
    if shape.loss_pct is None or shape.needs_netem:
        return None
    n = round(shape.loss_pct * LOSS_SCALE / 100)
    rule = f"numgen random mod {LOSS_SCALE} < {n} drop"

    def table(name: str, chain: str, device: str) -> str:
        return (f"table netdev {name} {{\n  chain {chain} {{ type filter hook ingress device \"{device}\" "
                f"priority 0; policy accept; {rule}; }}\n}}\n")
    return (table(root_loss_table(host), "from_host", host.veth), table(LOSS_TABLE, "to_host", INNER_IFACE))


@dataclass(frozen=True)
class Step:
    """One command of a shaping change; a clearing step may find nothing to clear."""

    argv: tuple[str, ...]
    stdin: str | None = None
    clearing: bool = False


def shape_commands(host: HostPlan, shape: LinkShape) -> list[Step]:
    """The steps that replace whatever shaping the host's link had with `shape`.
    Clearing first makes every shape, and clearing itself, idempotent."""
    steps = [Step(tuple(c), clearing=True) for c in clear_commands(host)]
    q = qdisc_args(shape)
    if q is not None:
        steps.append(Step(("tc", "qdisc", "replace", "dev", host.veth, "root", *q)))
        steps.append(Step(tuple(netns_exec(host, ["tc", "qdisc", "replace", "dev", INNER_IFACE, "root", *q]))))
    rules = loss_rulesets(host, shape)
    if rules is not None:
        steps.append(Step(("nft", "-f", "-"), stdin=rules[0]))
        steps.append(Step(tuple(netns_exec(host, ["nft", "-f", "-"])), stdin=rules[1]))
    return steps


def clear_commands(host: HostPlan) -> list[list[str]]:
    return [["tc", "qdisc", "del", "dev", host.veth, "root"],
            netns_exec(host, ["tc", "qdisc", "del", "dev", INNER_IFACE, "root"]),
            ["nft", "delete", "table", "netdev", root_loss_table(host)],
            netns_exec(host, ["nft", "delete", "table", "netdev", LOSS_TABLE])]


def remove_machine_side(host: HostPlan) -> None:
    """Drop the machine-side loss table of a host going down (its namespace takes the rest)."""
    if shutil.which("nft"):
        subprocess.run(["nft", "delete", "table", "netdev", root_loss_table(host)], capture_output=True)


# Errors of the clearing steps that mean "nothing to clear".
_NOTHING = ("Cannot delete qdisc with handle of zero", "No such file", "Cannot find", "does not exist")


def apply_shape(host: HostPlan, shape: LinkShape) -> None:
    """Shape the host's link (an unshaped LinkShape() clears it)."""
    for step in shape_commands(host, shape):
        proc = subprocess.run(list(step.argv), input=step.stdin, capture_output=True, text=True)
        err = proc.stderr.strip()
        if proc.returncode == 0 or (step.clearing and any(t in err for t in _NOTHING)):
            continue
        if "netem" in step.argv and "qdisc kind is unknown" in err:
            apply_shape(host, LinkShape())
            raise InvalidInput("delay", "this kernel has no netem qdisc (sch_netem), so the lab cannot "
                                        "add delay here; --rate and --loss work without it")
        raise OperationFailed(f"{' '.join(step.argv)} failed: {err}")
