"""docs/benchmarks.md: tables and plots from the raw results of `ferry bench migrate` / `policies`.

The raw results are kept as JSON beside the report (<report dir>/benchmarks/<kind>.json); each
benchmark's section is its own marked block of the report (ferry.bench.doc_blocks), so running
one benchmark again replaces only its section and keeps the others' and any notes around them.
Rendering is pure (`migrate_section`, `policies_section`, `render`); `write_report` does the
files and plots.
"""
from __future__ import annotations

import json
from pathlib import Path

from ferry.bench import plots
from ferry.bench.analysis import EFFICIENCY_TARGET, OVERHEAD_TARGET, direction_throughput, headline, mode_rows
from ferry.bench.doc_blocks import write_block
from ferry.bench.qemu_threads import KIND_TEXT, KINDS
from ferry.bench.stats import Summary, summarize, verdict
from ferry.bench.timeline import PHASES, breakdown

INTRO = ["# Ferry benchmarks", "",
         "Measured on the lab (real libvirtd and QEMU processes on one machine, see "
         "[architecture](architecture.md)) by `ferry bench migrate` and `ferry bench policies`; "
         "regenerate with `ferry bench migrate --report docs/benchmarks.md` (and `ferry bench policies "
         "--report docs/benchmarks.md`). Raw results: `docs/benchmarks/*.json`.", ""]
MIGRATE_HEADING = "## Migrations: Ferry vs bare virsh vs raw TCP"
POLICIES_HEADING = "## Convergence under the built-in policies"
POLICIES_MATRIX_HEADING = "## Convergence under the built-in policies and Adaptive, over harder workloads"


def _s(s: Summary | None, fmt: str = "{:.2f}") -> str:
    return s.text(fmt) if s else "–"


def _x(s: Summary | None) -> str:
    return s.text("{:.2f}x") if s else "–"


def machine_section(m: dict) -> list[str]:
    return [
        f"- Machine: {m.get('cores')} cores ({m.get('cpu_model') or 'unknown CPU'}), "
        f"{m.get('memory_gib')} GiB RAM, kernel {m.get('kernel')}; load average at start "
        f"{', '.join(str(x) for x in m.get('load_avg_at_start') or [])} (the machine is shared with other work)",
        f"- QEMU {m.get('qemu')}, libvirt {m.get('libvirt')}, accelerator **{m.get('accelerator')}**"
        + (f" ({m.get('accelerator_reason')})" if m.get("accelerator_reason") else ""),
        f"- Lab {m.get('lab_id')}: {', '.join(m.get('lab_hosts') or [])}: libvirtd per host in its own network/mount/UTS "
        "namespace, joined by veth pairs over one bridge on this machine; {0}".format(m.get("iperf3") or "iperf3"),
    ]


def _path_text(path: str) -> str:
    return {"ferry-agent": "Ferry's host agents (JSON-RPC VM.migrate / VM.getMigrationStatus)",
            "ferry-engine": "Ferry's engine (REST POST /api/vms/{vm}/migrate, GET /api/migrations/{id}) "
                            "and its host agents"}.get(path, path)


def migrate_section(res: dict, plot_names: dict[str, str]) -> list[str]:
    recs = res["records"]
    rows = mode_rows(recs)
    head = headline(recs)
    mx = res["matrix"]
    out = [MIGRATE_HEADING, ""]
    out += machine_section(res["machine"])
    out += [
        f"- Run {res['started_at'][:19]}Z – {res['ended_at'][:19]}Z: sizes {mx['sizes']} MiB, modes "
        f"{', '.join(mx['modes'])}, dirty rates {mx['dirty']} MiB/s, {mx['repeat']} repeat(s); "
        f"{head.migrations} migrations, {head.failed} failed, {head.verified} with memory verified intact.",
        f"- Ferry path: {_path_text(res.get('ferry_path', ''))}. Bare virsh: "
        "`virsh -c qemu+tcp://<src>/system migrate` with the same libvirt flags and parameters "
        "(built from the agent's own flag builder). Every migration: no bandwidth cap, no convergence "
        "actions (QEMU's default 300 ms downtime limit on both sides). libvirt daemons reach each other over "
        f"qemu+{res.get('libvirt_transport', 'tcp')}:// (the lab agents' mode), QEMU's own stream over plain TCP.",
        "- Each guest fills all but max(160 MiB, 10%) of its memory and rewrites `dirty` MiB/s of it; "
        f"raw TCP is iperf3 ({res.get('iperf_seconds', 3):g} s, same stream count, between the same two lab "
        "addresses) measured right before each Ferry/virsh pair; the pair's order alternates per repeat "
        "(Ferry first on odd repeats), so with an even repeat count each driver migrates as often in each "
        "direction; the first migration of a freshly booted guest counts like any other.",
        f"- Guests have {res.get('guest_vcpus', 1)} vCPU(s) (the engine's planner allows at most max(2, vCPUs) "
        "parallel connections), the same guest for both drivers.",
        "- Values are medians with (min–max) over the repeats.",
        "",
        "### Headline against the targets",
        "",
        "| measure | target | measured | verdict |",
        "|---|---|---|---|",
        f"| control-plane overhead (Ferry wall time / bare virsh, paired in the same direction), all runs "
        f"| ≤ {OVERHEAD_TARGET}x | {_x(head.overhead)} "
        f"| {verdict(head.overhead.median if head.overhead else None, OVERHEAD_TARGET, higher_is_better=False)} |",
    ]
    for mode, s in head.overhead_by_mode.items():
        out.append(f"| overhead, {mode} | ≤ {OVERHEAD_TARGET}x | {_x(s)} | "
                   f"{verdict(s.median if s else None, OVERHEAD_TARGET, higher_is_better=False)} |")
    for mode, s in head.efficiency_by_mode.items():
        out.append(f"| efficiency, {mode} (Ferry throughput / raw TCP, same streams) | ≥ {EFFICIENCY_TARGET}x | "
                   f"{_x(s)} | {verdict(s.median if s else None, EFFICIENCY_TARGET, higher_is_better=True)} |")
    out += ["", "### Reading these numbers", ""] + reading_notes(res) + [""] + breakdown_section(recs)
    out += ["### Per configuration", "",
            "| size MiB | dirty MiB/s | mode | driver | wall s | QEMU time s | downtime ms | MiB/s | iterations "
            "| src CPU s | dst CPU s | zero-copy | verified |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        for name, ds in (("Ferry", r.ferry), ("virsh", r.virsh)):
            if ds is None:
                continue
            zc = ", ".join(ds.zerocopy_states) or "–"
            if ds.missed_zero_copy and "off" not in ds.zerocopy_states:
                zc += f" (missed {ds.missed_zero_copy.text('{:.0f}')})"
            out.append(f"| {r.size_mib} | {r.dirty_mib_s} | {r.mode} | {name} | {_s(ds.wall_s)} | {_s(ds.total_s)} | "
                       f"{_s(ds.downtime_ms, '{:.0f}')} | {_s(ds.throughput_mib_s, '{:.0f}')} | "
                       f"{_s(ds.iterations, '{:.0f}')} | {_s(ds.cpu_source_s)} | {_s(ds.cpu_destination_s)} | {zc} | "
                       f"{ds.verified}/{ds.runs}" + (f", {ds.failed} failed" if ds.failed else "") + " |")
    out += ["", "| size MiB | dirty MiB/s | mode | streams | raw TCP MiB/s | overhead (wall) | QEMU-time ratio "
            "| efficiency Ferry | efficiency virsh |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r.size_mib} | {r.dirty_mib_s} | {r.mode} | {r.streams} | {_s(r.raw_mib_s, '{:.0f}')} | "
                   f"{_x(r.overhead)} | {_x(r.qemu_time_ratio)} | {_x(r.efficiency_ferry)} | {_x(r.efficiency_virsh)} |")
    out += ["", "### QEMU CPU seconds by thread kind (Ferry runs, medians)", "",
            "Kinds: " + "; ".join(f"`{k}` {KIND_TEXT[k]}" for k in KINDS) + ". Sampled every 0.1 s from "
            "/proc/<pid>/task/*/stat together with the process total (which keeps what exited threads used): "
            "time a thread used after its last sample is shared out from the total's growth. The source QEMU "
            "exits when the migration ends, so up to one sampling interval of its last work is missing.", "",
            "| size MiB | dirty | mode | side | " + " | ".join(KINDS) + " |",
            "|---|---|---|---|" + "---|" * len(KINDS)]
    for r in rows:
        if r.ferry is None:
            continue
        for side in ("source", "destination"):
            k = r.ferry.cpu_kinds.get(side) or {}
            out.append(f"| {r.size_mib} | {r.dirty_mib_s} | {r.mode} | {side} | "
                       + " | ".join("–" if k.get(x) is None else f"{k[x]:.2f}" for x in KINDS) + " |")
    flags = sorted({f for r in rows for ds in (r.ferry, r.virsh) if ds for f in ds.flags})
    out += ["", "libvirt flags used: " + "; ".join(f"`{f}`" for f in flags) + "."]
    errors = [e for r in rows for ds in (r.ferry, r.virsh) if ds for e in ds.errors]
    if errors:
        out += ["", "Failures: " + "; ".join(sorted(set(errors)))]
    unverified = [r for r in recs if r["kind"] == "migrate" and not r.get("verified")]
    if unverified:
        out += ["", "Memory verification that did not pass (ferry.lab verify's own words):"]
        out += [f"- {r['size_mib']} MiB, dirty {r['dirty_mib_s']}, {r['mode']}, repeat {r['repeat'] + 1}, "
                f"{r['driver']} ({r['source']} → {r['destination']}): " + "; ".join(r.get("verify_reasons") or ["?"])
                + (f" (checks passed: {', '.join(r['verify_passed'])})" if r.get("verify_passed") else "")
                for r in unverified]
    out += [""]
    for key, title in (("times", "Times and downtime"), ("throughput", "Throughput vs raw TCP"),
                       ("cpu", "CPU by thread kind")):
        if key in plot_names:
            out += [f"![{title}]({plot_names[key]})", ""]
    return out


def reading_notes(res: dict) -> list[str]:
    """Notes whose figures come from this run's own records."""
    recs = [r for r in res["records"] if r["kind"] == "migrate" and r["ok"]]
    m = res["machine"]
    busy = summarize(_path(r, "cpu", "destination", "total") / (r["figures"]["total_ms"] / 1000)
                     for r in recs if _path(r, "cpu", "destination", "total") and _path(r, "figures", "total_ms"))
    copied = [r for r in recs if _path(r, "zerocopy", "state") == "kernel copied"]
    zc_runs = [r for r in recs if _path(r, "zerocopy", "zero_copy_send")]
    gap = summarize(r["wall_s"] - r["figures"]["total_ms"] / 1000 for r in recs
                    if r["driver"] == "ferry" and _path(r, "figures", "total_ms"))
    gap_v = summarize(r["wall_s"] - r["figures"]["total_ms"] / 1000 for r in recs
                      if r["driver"] == "virsh" and _path(r, "figures", "total_ms"))
    notes = [
        "- Both lab hosts are processes on this one machine: the \"link\" is a veth pair and a bridge in the kernel, so the raw "
        "TCP figure is the speed of copying between two processes, and migration competes with the guests, "
        f"both QEMUs, libvirtd and the agents for {m.get('cores')} cores.",
    ]
    if busy:
        notes.append(f"- Destination QEMU CPU seconds per second of migration: {busy.text()} (median, range; "
                     "1.0 is one core kept busy) over all successful runs"
                     + (f": the destination QEMU alone keeps {busy.median:.1f} of the machine's {m.get('cores')} "
                        "cores busy while it receives and places guest pages, the likely limit here"
                        + (" under TCG" if m.get("accelerator") == "tcg" else "")
                        + ", far below the raw TCP figure." if busy.median >= 0.75 else "."))
    dirs = direction_throughput(res["records"])
    if len(dirs) > 1:
        notes.append("- Throughput of every successful migration by direction: " + "; ".join(
                         f"{d} {v['throughput_mib_s'].text('{:.0f}') if v['throughput_mib_s'] else '–'} MiB/s "
                         f"(Ferry {v['runs']['ferry']} runs, virsh {v['runs']['virsh']})" for d, v in dirs.items())
                     + ". The lab's two directions need not be equally fast, so each Ferry run is compared with a "
                     "virsh run in the same direction.")
    if zc_runs:
        notes.append(f"- Zero-copy was switched on (QEMU's zero-copy-send) in {len(zc_runs)} runs; in {len(copied)} "
                     "of them QEMU counted dirty syncs where the kernel copied anyway "
                     "(dirty-sync-missed-zero-copy > 0), as it always does over loopback, so no CPU saving "
                     "can show on one machine.")
    if gap and gap_v:
        notes.append(f"- Wall time minus QEMU's own migration time (seconds): Ferry {gap.text()}, bare virsh "
                     f"{gap_v.text()}. For Ferry it holds the control plane: "
                     + (("the engine's plan and records, its VM.migrate to the source agent, the agents' "
                         "VM.migrationCreate, and following the agent (long polls: the engine hears of the end "
                         "when the agent records it, the benchmark when the engine does; see the breakdown below)")
                        if res.get("ferry_path") == "ferry-engine" and breakdown(recs) else
                        ("the engine's plan and records, its VM.migrate to the source agent, the agents' "
                         "VM.migrationCreate, and following the agent (the engine polls it at 2 Hz, the "
                         "benchmark polls the engine at 10 Hz)")
                        if res.get("ferry_path") == "ferry-engine" else
                        "the agents' VM.migrate and VM.migrationCreate and polling the source agent at 10 Hz")
                     + "; for virsh, connecting to libvirtd and the migration's prepare/finish steps, "
                     "which Ferry's migration goes through as well.")
    return notes


def breakdown_section(recs: list[dict]) -> list[str]:
    """Where a Ferry migration's wall time goes, phase by phase (ferry.bench.timeline)."""
    b = breakdown(recs)
    if "control_plane" not in b:
        return []
    n = b["control_plane"].n
    out = ["### Where Ferry's wall time goes", "",
           f"From the timestamps the benchmark, the engine's record and the source agent keep for each run "
           f"({n} successful Ferry runs; seconds, median (min–max)). Everything outside virDomainMigrateToURI3 "
           "is Ferry's control plane; inside it are QEMU's own migration time and libvirt's steps around it "
           "(the destination's prepare, and the source's confirm, which stops the source QEMU), which bare "
           "virsh waits for as well. How the control plane was brought down from about 0.5 s: "
           "[benchmarks-control-plane.md](benchmarks-control-plane.md).", "",
           "| phase | seconds | control plane |", "|---|---|---|"]
    for p in PHASES:
        if p.key in b:
            out.append(f"| {p.label} | {b[p.key].text('{:.3f}')} | {'yes' if p.control_plane else 'no'} |")
    for key, label in (("qemu", "inside it: QEMU's own migration time"),
                       ("libvirt_around_qemu", "inside it: libvirt around QEMU (prepare; confirm, which stops the source QEMU)")):
        if key in b:
            out.append(f"| {label} | {b[key].text('{:.3f}')} | no |")
    out += [f"| **control plane in all** | **{b['control_plane'].text('{:.3f}')}** | yes |", ""]
    return out


def _path(rec, *keys):
    for k in keys:
        if not isinstance(rec, dict):
            return None
        rec = rec.get(k)
    return rec


def policies_section(res: dict, plot_names: dict[str, str]) -> list[str]:
    w = res["workload"]
    out = [POLICIES_HEADING, ""]
    out += machine_section(res["machine"])
    out += [
        f"- Run {res['started_at'][:19]}Z – {res['ended_at'][:19]}Z through {_path_text(res.get('ferry_path', ''))}.",
        f"- Hard workload: a {w['memory_mib']} MiB guest filling {w['fill_mib']} MiB and rewriting "
        f"{w['dirty_mib_s']} MiB/s, against a bandwidth cap of {w['cap_mib_s']} MiB/s; {w['repeat']} run(s) per policy.",
        "- VM.migrate parameters come from the engine's planner for each built-in policy (cluster defaults); "
        "only maxBandwidth is fixed at the cap for all of them, so every policy faces the same link.",
        "",
        "| policy | outcome | time s | downtime ms | iterations | schedule actions run | flags | verified |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in res["summary"]:
        outcome = []
        if s["converged_runs"]:
            outcome.append(f"converged {s['converged_runs']}/{s['runs']}")
        if s["aborted_runs"]:
            outcome.append(f"aborted {s['aborted_runs']}/{s['runs']}")
        if s["other_runs"]:
            outcome.append(f"failed {s['other_runs']}/{s['runs']}")
        acts = ", ".join(f"{a['action']}" + (f"@{a['n']}" if a['n'] is not None else "") for a in s["actions"]) or "none"
        flags = " ".join(f.replace("VIR_MIGRATE_", "") for f in s["flags"])
        out.append(f"| {s['policy']} | {', '.join(outcome)} | {_sd(s['time_s'], '{:.1f}')} | "
                   f"{_sd(s['downtime_ms'], '{:.0f}')} | {_sd(s['iterations'], '{:.0f}')} | {acts} | {flags} | "
                   f"{s['verified']}/{s['runs']} |")
    out += ["", "Schedule actions are listed as action@n (n = iterations since the first one seen) for the first "
            "run of each policy.", ""]
    if "policies" in plot_names:
        out += [f"![Policies]({plot_names['policies']})", ""]
    return out


def _sd(d: dict | None, fmt: str) -> str:
    if not d:
        return "–"
    return Summary(d["median"], d["min"], d["max"], d["n"]).text(fmt)


def render(migrate: dict | None, policies: dict | None, plot_names: dict[str, str]) -> str:
    """The migrate and policies sections as one document (the report's head for a new file)."""
    out = list(INTRO)
    if migrate:
        out += migrate_section(migrate, plot_names)
    if policies:
        out += policies_section(policies, plot_names)
    if not migrate and not policies:
        out += ["No benchmark has been run yet.", ""]
    return "\n".join(out).rstrip() + "\n"


def write_report(report: Path, result: dict) -> Path:
    """Store `result`'s JSON beside the report, draw its plots, and put its section (its own
    block, ferry.bench.doc_blocks) into the report; the other benchmarks' sections stay."""
    report = Path(report)
    kind = result["kind"]
    data_dir = report.parent / report.stem
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / f"{kind}.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    names: dict[str, str] = {}
    rel = data_dir.name
    head = "\n".join(INTRO).rstrip() + "\n"
    if kind == "migrate":
        rows = mode_rows(result["records"])
        if rows:
            plots.plot_times(rows, data_dir / "times.png")
            plots.plot_throughput(rows, data_dir / "throughput.png")
            plots.plot_cpu(rows, data_dir / "cpu.png")
            names.update(times=f"{rel}/times.png", throughput=f"{rel}/throughput.png", cpu=f"{rel}/cpu.png")
        return write_block(report, "migrate", "\n".join(migrate_section(result, names)), head=head,
                           adopt_heading=MIGRATE_HEADING)
    if kind == "policies" and len(result["workload"].get("workloads") or []) > 1:
        from ferry.bench import policy_report

        plots.plot_policy_matrix(result["runs"], data_dir / "policies.png")
        names["policies"] = f"{rel}/policies.png"
        body = policy_report.section(result, names, POLICIES_MATRIX_HEADING, machine_section(result["machine"]))
        return write_block(report, "policies", "\n".join(body), head=head, adopt_heading=POLICIES_HEADING)
    if kind == "policies":
        if result["summary"]:
            plots.plot_policies(result["summary"], data_dir / "policies.png")
            names["policies"] = f"{rel}/policies.png"
        return write_block(report, "policies", "\n".join(policies_section(result, names)), head=head,
                           adopt_heading=POLICIES_HEADING)
    raise ValueError(f"no report section for results of kind {kind!r}")
