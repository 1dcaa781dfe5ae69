"""Is a guest's memory intact? Analysis of workload console logs (pure: text in, report out).

The workload (ferry/lab/workload/workload.c) prints FERRY START/READY/HB/BAD/SCAN lines; a
migrated guest's output is split across hosts (each host logs what the guest printed while
it ran there). `analyze` takes every host's log for one VM, the host it runs on now, and the
offset in that host's log where the verification began (a full scan was requested there),
and decides "nothing lost":
- one workload run (the guest never restarted with fresh memory),
- heartbeats continued on the current host after the request, and the heartbeat sequence
  is continuous across hosts (no duplicates: the guest never ran twice from one state),
- no BAD lines, and the last heartbeat's bad/lost counters are 0,
- a full scan after the request covered every page and found nothing,
- no kernel oops / panic / BUG and no workload failure anywhere,
- when the guest dirties memory, its write counter kept growing on the current host.

Which copy to verify is decided here too (`running_copy`): after a migration a VM can have
several copies (the running one, a paused incoming copy left by an interrupted migration, a
shut-off definition on a former source); only the running copy says anything about memory.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from ferry.common.errors import Conflict, NotFound

_LINE_RE = re.compile(r"FERRY (START|READY|HB|BAD|SCAN|FAIL) run=([0-9a-f]+)((?: \S+=\S+)*)")
_KV_RE = re.compile(r"(\w+)=(\S+)")
KERNEL_ERROR_PATTERNS = (
    "Kernel panic", "Oops:", "BUG:", "general protection fault", "Call Trace:",
    "WARNING: CPU:", "Unable to handle", "segfault at", "invalid opcode:",
)
MAX_SEQ_GAP = 2  # a line or two may be lost on the serial line across a switchover
# Heartbeats must span this much guest time before "still dirtying" can be judged: right after
# a long full scan, two queued heartbeats can arrive milliseconds apart with the same count.
DIRTY_SPAN_MS = 1000


@dataclass(frozen=True)
class Event:
    kind: str
    run: str
    fields: dict[str, str]
    host: str
    offset: int  # byte offset of the line in that host's log

    def num(self, key: str, default: int = -1) -> int:
        try:
            return int(self.fields.get(key, default))
        except ValueError:
            return default


@dataclass(frozen=True)
class HostLog:
    host: str
    text: str


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class VerifyReport:
    """The answer to "is this guest's memory intact?", with the evidence."""

    vm: str
    host: str
    intact: bool
    reasons: list[str]  # why not intact (empty when intact)
    checks: list[Check] = field(default_factory=list)
    run: str | None = None
    last_seq: int | None = None
    heartbeats_here: int = 0
    writes: int | None = None
    scan: dict[str, int] | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def parse_events(host: str, text: str) -> list[Event]:
    events = []
    offset = 0
    for line in text.splitlines(keepends=True):
        m = _LINE_RE.search(line)
        if m:
            events.append(Event(m.group(1), m.group(2), dict(_KV_RE.findall(m.group(3))), host, offset))
        offset += len(line.encode("utf-8", "surrogateescape"))
    return events


def kernel_errors(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines()
            if any(p in line for p in KERNEL_ERROR_PATTERNS)]


def analyze(vm: str, logs: list[HostLog], current_host: str, since_offset: int = 0,
            *, min_heartbeats: int = 2) -> VerifyReport:
    """Decide whether the guest `vm`, now on `current_host`, has intact memory."""
    checks: list[Check] = []
    events = [e for log in logs for e in parse_events(log.host, log.text)]
    here_after = [e for e in events if e.host == current_host and e.offset >= since_offset]

    starts = [e for e in events if e.kind == "START"]
    runs = sorted({e.run for e in events})
    run = starts[0].run if starts else (runs[0] if runs else None)
    checks.append(Check("workload_started", bool(starts),
                        f"workload started (run {run})" if starts else "no FERRY START line in any log"))
    checks.append(Check("single_run", len(runs) <= 1 and len(starts) <= 1,
                        "one workload run" if len(runs) <= 1 and len(starts) <= 1
                        else f"workload restarted: runs {', '.join(runs)} ({len(starts)} START lines)"))

    hbs = [e for e in events if e.kind == "HB"]
    hbs_here = [e for e in here_after if e.kind == "HB"]
    checks.append(Check("heartbeats_continue_here", len(hbs_here) >= min_heartbeats,
                        f"{len(hbs_here)} heartbeats on {current_host} since the check began "
                        f"(need {min_heartbeats})"))

    by_seq: dict[int, list[str]] = {}
    for e in hbs:
        by_seq.setdefault(e.num("seq"), []).append(e.host)
    dups = {s: h for s, h in by_seq.items() if len(h) > 1}
    seqs = sorted(by_seq)
    gaps = [(a, b) for a, b in zip(seqs, seqs[1:]) if b - a > MAX_SEQ_GAP]
    if seqs and seqs[0] > 1 + MAX_SEQ_GAP:
        gaps.insert(0, (0, seqs[0]))
    seq_ok = bool(seqs) and not dups and not gaps
    if not seqs:
        detail = "no heartbeats at all"
    elif dups:
        s, h = next(iter(sorted(dups.items())))
        detail = f"heartbeat seq {s} seen {len(h)} times ({', '.join(h)}): the guest ran twice from one state"
    elif gaps:
        detail = "heartbeats missing between seq " + ", ".join(f"{a} and {b}" for a, b in gaps)
    else:
        detail = f"heartbeats 1..{seqs[-1]} continuous across {len({e.host for e in hbs})} host(s)"
    checks.append(Check("heartbeat_sequence", seq_ok, detail))

    bads = [e for e in events if e.kind == "BAD"]
    last_hb = max(hbs, key=lambda e: e.num("seq")) if hbs else None
    counters_bad = last_hb.num("bad", 0) if last_hb else 0
    counters_lost = last_hb.num("lost", 0) if last_hb else 0
    if bads:
        first = bads[0]
        detail = (f"{len(bads)} bad page report(s), first page {first.fields.get('page')} "
                  f"({first.fields.get('kind')}) on {first.host}")
    elif counters_bad or counters_lost:
        detail = f"last heartbeat counts bad={counters_bad} lost={counters_lost}"
    else:
        detail = "no bad or lost pages reported by spot checks"
    checks.append(Check("no_bad_pages", not bads and not counters_bad and not counters_lost, detail))

    expected_pages = starts[0].num("pages") if starts else -1
    scans_here = [e for e in here_after if e.kind == "SCAN"]
    scan = scans_here[-1] if scans_here else None
    scan_dict = None
    if scan is None:
        checks.append(Check("full_scan_clean", False, f"no full scan result on {current_host} since the check began"))
    else:
        scan_dict = {k: scan.num(k) for k in ("scan", "pages", "bad", "lost", "ms")}
        ok = scan.num("bad") == 0 and scan.num("lost") == 0 and scan.num("pages") == expected_pages
        checks.append(Check("full_scan_clean", ok,
                            f"full scan of {scan.num('pages')}/{expected_pages} pages: "
                            f"bad={scan.num('bad')} lost={scan.num('lost')} in {scan.num('ms')} ms"))

    errors = [f"{log.host}: {line}" for log in logs for line in kernel_errors(log.text)]
    fails = [e for e in events if e.kind == "FAIL"]
    errors += [f"{e.host}: workload failed: {e.fields.get('reason')}" for e in fails]
    checks.append(Check("no_kernel_errors", not errors,
                        "no oops, panic or BUG" if not errors else f"{len(errors)} error line(s), first: {errors[0][:200]}"))

    dirty = starts[0].num("dirty_mib_s", 0) if starts else 0
    if dirty > 0:
        first, last = (hbs_here[0], hbs_here[-1]) if hbs_here else (None, None)
        span = last.num("ms") - first.num("ms") if first else 0
        if span < DIRTY_SPAN_MS:
            checks.append(Check("still_dirtying", False,
                                f"heartbeats here span {max(span, 0)} ms of guest time, too little to see "
                                f"writes (need {DIRTY_SPAN_MS} ms)"))
        else:
            w0, w1 = first.num("writes"), last.num("writes")
            checks.append(Check("still_dirtying", w1 > w0,
                                f"writes {w0} -> {w1} over {span} ms on {current_host}"))

    reasons = [c.detail for c in checks if not c.ok]
    return VerifyReport(
        vm=vm, host=current_host, intact=not reasons, reasons=reasons, checks=checks, run=run,
        last_seq=last_hb.num("seq") if last_hb else None, heartbeats_here=len(hbs_here),
        writes=last_hb.num("writes") if last_hb else None, scan=scan_dict)


def scan_seen(text: str, since_offset: int, min_heartbeats: int = 2) -> bool:
    """Whether a log has, after `since_offset`, a full scan result and enough heartbeats, spanning
    DIRTY_SPAN_MS of guest time (so analyze can tell whether a dirtying guest still writes)."""
    ev = [e for e in parse_events("", text) if e.offset >= since_offset]
    hbs = [e for e in ev if e.kind == "HB"]
    return (any(e.kind == "SCAN" for e in ev) and len(hbs) >= min_heartbeats
            and hbs[-1].num("ms") - hbs[0].num("ms") >= DIRTY_SPAN_MS)


@dataclass(frozen=True)
class Copy:
    """One host's copy of a VM as libvirt reports it."""

    host: str
    state: str      # libvirt's state name: running, paused, shutoff, ...
    reason: int = 0  # libvirt's state reason code


def running_copy(vm: str, copies: list[Copy]) -> str:
    """The host whose copy of `vm` to verify: the one copy that runs.

    - exactly one running copy: that one, whatever paused or shut-off copies exist elsewhere
      (a paused incoming copy holds no guest state yet; a shut-off definition none at all);
    - no running copy but exactly one paused one (mid-switchover, or paused by hand): that
      one, so verify reports it as not running, with its state;
    - two running copies: an error, the guest would be running twice;
    - otherwise (none active, or only several paused): not found / ambiguous, naming the states.
    """
    running = [c.host for c in copies if c.state == "running"]
    if len(running) == 1:
        return running[0]
    if len(running) > 1:
        raise Conflict(f"VM {vm!r} is running on {len(running)} hosts at once: {', '.join(running)}")
    paused = [c.host for c in copies if c.state == "paused"]
    if len(paused) == 1:
        return paused[0]
    if paused:
        raise Conflict(f"VM {vm!r} runs nowhere and is paused on {', '.join(paused)}: "
                       "name the host to verify")
    raise NotFound("running VM", vm)
