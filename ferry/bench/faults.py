"""The fault matrix (issue 11 item 7): a fault injected mid-migration of a dirtying guest, then
whether the engine's record ended as libvirt did.

One fault run: a workload guest booted through the engine on host 1, migrated with the cluster's
bandwidth capped (MIGRATION_MBPS, so the migration lasts ~10-20 s), the fault injected once the
migration moves data, and the run followed to the record's end (across engine restarts). Then:
- consistent: SUCCEEDED and libvirt runs the VM on the record's destination, or any other end
  and libvirt runs it on the record's source; the engine's inventory says the same host;
- one host: exactly one running copy (`ferry.lab.Lab.copies`);
- intact: `lab.verify` of the running copy;
- no concurrent attempt: never two destinations holding a copy at once, and each attempt's job
  window (the agent's timeline) ends before the next starts.

`FaultLab` drives its own engine process (own database and port, so it can be killed and
restarted) over the lab's agents. The e2e tests (tests/e2e/test_faults*.py) and
`ferry bench faults` (which writes docs/reliability.md) both run `FaultLab.run(fault)`.
"""
from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

FAULTS = ("engine-sigkill", "engine-sigterm", "source-agent-restart", "destination-agent-restart",
          "source-libvirtd-restart", "destination-qemu-kill", "source-cut-30s", "destination-cut-30s", "cancel")
QUICK = ("source-agent-restart", "source-cut-30s", "engine-sigkill")   # the ones `make test` runs
FINAL = ("SUCCEEDED", "FAILED", "CANCELLED", "ABORTED")
CLUSTER = "faults"
MIGRATION_MBPS = 80          # 10 MiB/s for the guest's 128 MiB filled and 4 MiB/s dirtied: ~15-20 s
CUT_S = 30.0
RUN_TIMEOUT_S = 300.0
LINK_SPEED_MBPS = 10_000
HEARTBEAT_TIMEOUT_S = 180.0

Progress = Callable[[str], None]


@dataclass
class FaultRun:
    """One fault's outcome."""

    fault: str
    record: str | None = None          # the record's final state
    source: str | None = None
    destination: str | None = None     # the record's (last) destination
    engine_host: str | None = None     # where the engine's inventory says the VM runs
    reality: str | None = None         # where libvirt runs it (the running copy), None = nowhere
    running_copies: int = 0
    intact: bool | None = None
    attempts: int = 0
    concurrent: bool = False           # two attempts ran at once
    error: str | None = None           # the record's error
    problem: str | None = None         # why the run itself could not finish
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        if self.record is None:
            return False
        if self.reality is None:      # runs nowhere: only a record that did not succeed, and no host, says so
            return self.running_copies == 0 and self.record != "SUCCEEDED" and self.engine_host is None
        expected = self.destination if self.record == "SUCCEEDED" else self.source
        return self.reality == expected and self.engine_host == self.reality

    @property
    def ok(self) -> bool:
        return self.consistent and self.running_copies == 1 and bool(self.intact) and not self.concurrent

    def to_dict(self) -> dict:
        return {**asdict(self), "consistent": self.consistent, "ok": self.ok}


class FaultLab:
    """An engine process of its own over the lab's first three hosts (see the module docstring)."""

    def __init__(self, lab, workdir: Path, progress: Progress = lambda _m: None, cut_s: float = CUT_S):
        self.lab = lab
        self.workdir = Path(workdir)
        self.progress = progress
        self.cut_s = cut_s
        self.hosts = lab.plan.hosts(3)
        self.db_url = f"sqlite:///{self.workdir / 'engine.db'}"
        self.log = self.workdir / "engine.log"
        self.proc = None
        self.port = None
        self.client = None

    # ---- the engine ----------------------------------------------------------------------------
    def start(self) -> None:
        from ferry.client.engine_client import EngineClient
        from ferry.engine.db import upgrade_database
        from ferry.engine.process import free_port
        from ferry.engine.services.tokens import issue_token

        self.workdir.mkdir(parents=True, exist_ok=True)
        upgrade_database(self.db_url)
        token = issue_token(self.db_url, "admin", f"faults-{uuid.uuid4().hex[:6]}")[0]
        self.port = free_port()
        self._start_engine()
        self.client = EngineClient(f"http://127.0.0.1:{self.port}", token, timeout=60)
        self.client.post("/api/clusters", {"name": CLUSTER, "policy": "Very large VMs",
                                           "bandwidth": {"mode": "CUSTOM", "custom_mbps": MIGRATION_MBPS}})
        for h in self.hosts:
            self.client.post("/api/hosts", {"name": h.name, "cluster": CLUSTER, "address": h.address,
                                            "link_speed_mbps": LINK_SPEED_MBPS})
            host = self.client.post(f"/api/hosts/{h.name}/refresh", {})
            if host["status"] != "UP":
                raise RuntimeError(f"{h.name}: agent not answering: {host}")

    def _start_engine(self) -> None:
        from ferry.engine.process import start_engine

        self.proc = start_engine(self.db_url, self.log, port=self.port, monitor_interval=2,
                                 images_dir=self.lab.plan.images_dir)

    def stop(self) -> None:
        from ferry.engine.process import stop_engine

        if self.client is not None:
            self.client.close()
        if self.proc is not None:
            stop_engine(self.proc)
            self.proc = None

    def __enter__(self) -> FaultLab:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- one run -------------------------------------------------------------------------------
    def run(self, fault: str) -> FaultRun:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")
        out = FaultRun(fault)
        t0 = time.monotonic()
        name = f"flt-{uuid.uuid4().hex[:6]}"
        try:
            self._boot(name)
            m = self.client.post(f"/api/vms/{name}/migrate", {})
            out.source = m["source"]
            watch = _Watch(self.lab, name, m["source"])
            m = self._wait(m, watch, until=_moving_data, timeout=120)
            if m["state"] != "RUNNING":
                out.problem = f"the migration was {m['state']} before the fault could be injected: {m.get('error')}"
            else:
                self.progress(f"{fault}: injecting into {name} {m['source']} -> {m['destination']}")
                self._inject(fault, m, name, watch)
            final = self._wait(m, watch, timeout=RUN_TIMEOUT_S)
            self._judge(out, final, name, watch)
        except Exception as exc:  # noqa: BLE001 - a run that breaks is reported, the matrix goes on
            out.problem = out.problem or f"{type(exc).__name__}: {exc}"
        finally:
            out.seconds = round(time.monotonic() - t0, 1)
            self._clean(name)
        self.progress(f"{fault}: record {out.record}, libvirt runs it on {out.reality}, "
                      f"intact {out.intact}, ok {out.ok}" + (f" ({out.problem})" if out.problem else ""))
        return out

    def _boot(self, name: str) -> None:
        workload = {"fill_mib": 128, "dirty_mib_s": 4}
        spec = self.lab.guest_spec(name, memory_mib=512, vcpus=1, **workload).to_dict()
        self.client.post("/api/vms", {**spec, "cluster": CLUSTER, "workload": workload})
        self.client.post(f"/api/vms/{name}/start", {"host": self.hosts[0].name})
        log, deadline = self.lab.console_log(self.hosts[0], name), time.monotonic() + HEARTBEAT_TIMEOUT_S
        while b"FERRY HB " not in (log.read_bytes() if log.exists() else b""):   # filled, dirtying
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name}: no workload heartbeat on its console within {HEARTBEAT_TIMEOUT_S:.0f} s")
            time.sleep(0.5)

    def _wait(self, m: dict, watch: _Watch, *, until=None, timeout: float) -> dict:
        """The record until it ends (or `until`), riding out an engine that is down meanwhile."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            watch.sample()
            try:
                m = self.client.get(f"/api/migrations/{m['id']}")
            except Exception:  # noqa: BLE001 - the engine is being restarted
                time.sleep(0.5)
                continue
            if (until is not None and until(m)) or m["state"] in FINAL:
                return m
            time.sleep(0.3)
        return m

    def _inject(self, fault: str, m: dict, name: str, watch: _Watch) -> None:
        src, dst = self.lab.host(m["source"]), self.lab.host(m["destination"])
        if fault in ("engine-sigkill", "engine-sigterm"):
            from ferry.engine.process import stop_engine

            if fault == "engine-sigkill":
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
            else:
                stop_engine(self.proc)
            self._pause(3, watch)
            self._start_engine()
        elif fault in ("source-agent-restart", "destination-agent-restart"):
            host = src if fault.startswith("source") else dst
            os.kill(self._entry(host)["agent"]["pid"], signal.SIGKILL)
            self.lab.restart_agent(host)
        elif fault == "source-libvirtd-restart":
            # As `systemctl restart libvirtd` does: the guests' QEMU processes run on.
            self.lab.restart_libvirtd(src, while_down=lambda: self._pause(2, watch))
        elif fault == "destination-qemu-kill":
            os.kill(self._qemu_pid(dst, name), signal.SIGKILL)
        elif fault in ("source-cut-30s", "destination-cut-30s"):
            host = src if fault.startswith("source") else dst
            self.lab.cut_off(host)
            try:
                self._pause(self.cut_s, watch)
            finally:
                self.lab.restore(host)
        elif fault == "cancel":
            self.client.post(f"/api/migrations/{m['id']}/cancel", {})

    def _pause(self, seconds: float, watch: _Watch) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            watch.sample()
            time.sleep(min(0.5, max(0.0, end - time.monotonic())))

    def _judge(self, out: FaultRun, final: dict, name: str, watch: _Watch) -> None:
        out.record = final["state"] if final["state"] in FINAL else None
        if out.record is None:
            out.problem = out.problem or f"the record is still {final['state']} after {RUN_TIMEOUT_S:.0f} s"
        out.destination = final.get("destination")
        out.error = final.get("error")
        out.attempts = len(final.get("attempts") or [])
        out.concurrent = watch.concurrent or _overlapping(final.get("attempts") or [])
        running = [c for c in self.lab.copies(name) if c.state == "running"]
        out.running_copies = len(running)
        out.reality = running[0].host if len(running) == 1 else None
        try:
            out.engine_host = self.client.get(f"/api/vms/{name}")["host"]
        except Exception as exc:  # noqa: BLE001
            out.notes.append(f"engine inventory: {exc}")
        if out.reality is not None:
            report = self.lab.verify(name, out.reality)
            out.intact = report.intact
            if not report.intact:
                out.notes.extend(report.reasons)

    def _clean(self, name: str) -> None:
        try:
            for m in self.client.get("/api/migrations", params={"vm": name, "active": True}):
                self.client.post(f"/api/migrations/{m['id']}/cancel", {})
            if self.client.get(f"/api/vms/{name}")["host"] is not None:
                self.client.post(f"/api/vms/{name}/stop", {})
            self.client.delete(f"/api/vms/{name}")
        except Exception:  # noqa: BLE001 - the lab's clean-up below must run
            pass
        self.lab.destroy_guest(name)

    def _entry(self, host) -> dict:
        return next(h for h in self.lab.status()["hosts"] if h["name"] == host.name)

    def _qemu_pid(self, host, vm: str) -> int:
        from ferry.lab import procs

        ns = procs.mount_ns(self._entry(host)["libvirtd_pid"])
        for pid in procs.pids_in_mount_ns(ns):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv and b"qemu-system" in argv[0] and f"guest={vm}".encode() in b" ".join(argv):
                return pid
        raise RuntimeError(f"no QEMU process of {vm} on {host.name}")


class _Watch:
    """Samples the VM's copies during a run: two destinations with a copy at once = two attempts."""

    def __init__(self, lab, name: str, source: str):
        self.lab, self.name, self.source = lab, name, source
        self.concurrent = False
        self.destinations_seen: set[str] = set()

    def sample(self) -> None:
        try:
            elsewhere = {c.host for c in self.lab.copies(self.name) if c.host != self.source and c.state != "shutoff"}
        except Exception:  # noqa: BLE001 - a host being restarted
            return
        self.destinations_seen |= elsewhere
        if len(elsewhere) > 1:
            self.concurrent = True


def _moving_data(m: dict) -> bool:
    f = m.get("figures") or {}
    return m["state"] == "RUNNING" and f.get("agent_state") == "running" and (f.get("data_processed") or 0) > 16 << 20


def _overlapping(attempts: list[dict]) -> bool:
    """Whether an attempt's libvirt job started before the previous one's ended (agent clocks)."""
    windows = [(a.get("agent_timeline") or {}) for a in attempts]
    for before, after in zip(windows, windows[1:]):
        end, start = before.get("job_ended_at"), after.get("job_started_at")
        if end is not None and start is not None and start < end:
            return True
    return False


# ---- docs/reliability.md -----------------------------------------------------------------------

TITLE = "# Reliability: the fault matrix"


def report_markdown(runs: list[FaultRun], *, lab_id: int, when: str) -> str:
    """The matrix: fault -> record -> reality -> intact, with counts over the runs of each fault
    (the report's `faults` block, ferry.bench.doc_blocks; TITLE heads a new report)."""
    lines = ["Generated by `ferry bench faults` (ferry/bench/faults.py) on lab "
             f"{lab_id}, {when}. Each run migrates a 512 MiB workload guest (128 MiB filled, 4 MiB/s "
             f"dirtied) with the bandwidth capped at {MIGRATION_MBPS} Mbps and injects the fault once "
             "the migration moves data. A run is **ok** when the record's final state matches where "
             "libvirt runs the VM (SUCCEEDED: on the record's destination; otherwise on its source, and "
             "the engine's inventory agrees), the VM runs on exactly one host, its memory is verified "
             "intact, and no second attempt ran alongside the first.", "",
             "| fault | runs | ok | record | reality (libvirt) | consistent | one host | intact | no concurrent attempt |",
             "|---|---|---|---|---|---|---|---|---|"]
    for fault in FAULTS:
        mine = [r for r in runs if r.fault == fault]
        if not mine:
            continue
        n = len(mine)
        records = _counts(r.record or "not ended" for r in mine)
        reality = _counts(_where(r) for r in mine)
        lines.append(f"| {fault} | {n} | {sum(r.ok for r in mine)}/{n} | {records} | {reality} | "
                     f"{sum(r.consistent for r in mine)}/{n} | {sum(r.running_copies == 1 for r in mine)}/{n} | "
                     f"{sum(bool(r.intact) for r in mine)}/{n} | {sum(not r.concurrent for r in mine)}/{n} |")
    problems = [r for r in runs if not r.ok]
    if problems:
        lines += ["", "## Runs that were not ok", ""]
        for r in problems:
            why = r.problem or r.error or "; ".join(r.notes) or "see the columns"
            lines.append(f"- {r.fault}: record {r.record}, destination {r.destination}, libvirt runs it on "
                         f"{r.reality} ({r.running_copies} running copies), engine says {r.engine_host}, "
                         f"intact {r.intact}: {why}")
    return "\n".join(lines) + "\n"


def _where(r: FaultRun) -> str:
    if r.reality is None:
        return "nowhere" if r.running_copies == 0 else f"{r.running_copies} hosts"
    return "destination" if r.reality == r.destination and r.reality != r.source else "source"


def _counts(values) -> str:
    seen: dict[str, int] = {}
    for v in values:
        seen[v] = seen.get(v, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in seen.items())
