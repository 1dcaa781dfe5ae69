"""Engine failover (issue 18 item 3): how long from kill -9 of an engine to another engine owning
its work, read from the leases table of the shared PostgreSQL.

`EnginePair` starts several `ferry engine run` processes on one database, each with its own
engine id and port; `wait_takeover` polls the leases of the given work until every one belongs to
a survivor and returns the seconds since the kill. `send_counts` counts the VM.migrate calls each
agent log records per VM ("VM <name>: migrating to ..."), so a run can show that no migration was
dispatched twice. The e2e test (tests/e2e/test_engine_failover.py) runs them on the real lab.

`measure_failover` is the cheap figure without the lab, for `ferry bench failover` (and any
report that wants it): migrations left RUNNING over hosts whose agents do not answer (nothing
listens at their loopback addresses, so nothing can be sent), owned by one engine; kill -9 it,
a fresh engine joins, and the time until a survivor owns all of them is one run.
"""
from __future__ import annotations

import os
import re
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ferry.engine.lease_rules import worst_takeover_s


@dataclass
class EngineProc:
    engine_id: str
    url: str
    log: Path
    proc: object = None

    def kill9(self) -> float:
        """SIGKILL, as a crash: no release of its leases. Returns time.monotonic() of the kill."""
        os.kill(self.proc.pid, signal.SIGKILL)
        t = time.monotonic()
        self.proc.wait(10)
        return t


@dataclass
class EnginePair:
    """N engine processes on one database URL (PostgreSQL), started in order."""

    db_url: str
    workdir: Path
    n: int = 2
    monitor_interval: float = 2.0
    engines: list[EngineProc] = field(default_factory=list)
    token: str | None = None

    def start(self) -> EnginePair:
        self.prepare()
        for _ in range(self.n):
            self.start_one()
        return self

    def prepare(self) -> None:
        """The schema and an admin token (before any engine starts)."""
        from ferry.engine.db import upgrade_database
        from ferry.engine.services.tokens import issue_token

        self.workdir.mkdir(parents=True, exist_ok=True)
        upgrade_database(self.db_url)
        self.token = issue_token(self.db_url, "admin", f"failover-{uuid.uuid4().hex[:6]}")[0]

    def start_one(self) -> EngineProc:
        """One more engine, engine-a, engine-b, ... in turn; returned once it answers."""
        from ferry.engine.process import free_port, start_engine

        port = free_port()
        name = f"engine-{chr(ord('a') + len(self.engines))}"
        e = EngineProc(name, f"http://127.0.0.1:{port}", self.workdir / f"{name}.log")
        e.proc = start_engine(self.db_url, e.log, port=port, monitor_interval=self.monitor_interval, engine_id=name)
        self.engines.append(e)
        return e

    def stop(self) -> None:
        from ferry.lab import procs

        for e in self.engines:
            if e.proc is not None and e.proc.poll() is None:
                procs.stop(e.proc.pid, timeout=15)
                e.proc.wait(timeout=5)


def seed_orphans(db_url: str, n: int) -> list[str]:
    """A cluster, two hosts whose agents never answer (127.77.0.1-2) and `n` RUNNING migrations
    of `n` VMs (as an engine leaves them); returns the migration ids."""
    from ferry.common.vmspec import VmSpec
    from ferry.engine.db import Database

    db = Database(db_url)
    try:
        with db.unit_of_work() as store:
            store.clusters.create("failover", policy="Very large VMs")
            for i in (1, 2):
                store.hosts.add(f"fo-h{i}", cluster="failover", address=f"127.77.0.{i}", status="UP",
                                link_speed_mbps=10_000)
            plan = {"params": {"dst": "127.77.0.2"}, "explanation": []}
            ids = []
            for i in range(n):
                store.vms.add(VmSpec(name=f"fo-vm{i}", memory_mib=256, vcpus=1, kernel="/k"), cluster="failover",
                              host="fo-h1")
                ids.append(store.migrations.create(f"fo-vm{i}", source="fo-h1", destination="fo-h2", plan=plan,
                                                   state="RUNNING").id)
            return ids
    finally:
        db.dispose()


def measure_failover(db_url: str, workdir: Path, *, runs: int = 3, migrations: int = 6,
                     progress=lambda _m: None) -> dict:  # noqa: ANN001
    """`runs` kills of the engine owning the work, each answered by a takeover (see the module
    docstring); the summary of the takeover times."""
    pair = EnginePair(db_url, Path(workdir), n=0)
    pair.prepare()
    work = [("migration", i) for i in seed_orphans(db_url, migrations)]
    seconds = []
    try:
        owner = pair.start_one()
        deadline = time.monotonic() + 60
        while set(owners(db_url, work).values()) != {owner.engine_id}:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{owner.engine_id} never owned the work: {owners(db_url, work)}")
            time.sleep(0.2)
        for _ in range(runs):
            pair.start_one()
            took, now = wait_takeover(db_url, work, owner.engine_id, owner.kill9(), timeout=60)
            seconds.append(took)
            progress(f"kill -9 {owner.engine_id}: taken over in {took:.1f} s")
            owner = next(e for e in pair.engines if e.engine_id == next(iter(now.values())))
    finally:
        pair.stop()
    return summary(seconds)


def owners(db_url: str, work: list[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
    """Who owns each (kind, key) now (None: no lease row)."""
    from ferry.engine.db import Database

    db = Database(db_url)
    try:
        with db.unit_of_work() as store:
            return {(k, key): getattr(store.leases.get(k, key), "owner", None) for k, key in work}
    finally:
        db.dispose()


def wait_takeover(db_url: str, work: list[tuple[str, str]], dead: str, killed_at: float,
                  timeout: float = 60.0, poll: float = 0.1) -> tuple[float, dict]:
    """Seconds from `killed_at` until no item of `work` is owned by `dead` any more and each
    has an owner (work that ended meanwhile, its lease released, counts as taken); and who
    owns what then. Raises TimeoutError naming the owners if that never happens."""
    from ferry.engine.db import Database

    db = Database(db_url)
    try:
        while True:
            with db.unit_of_work() as store:
                now = {(k, key): getattr(store.leases.get(k, key), "owner", None) for k, key in work}
                ended = {(k, key) for k, key in work if _ended(store, k, key)}
            if all(o not in (None, dead) or w in ended for w, o in now.items()):
                return time.monotonic() - killed_at, now
            if time.monotonic() - killed_at > timeout:
                raise TimeoutError(f"work of {dead} not taken over within {timeout:.0f} s: {now}")
            time.sleep(poll)
    finally:
        db.dispose()


def _ended(store, kind: str, key: str) -> bool:  # noqa: ANN001
    if kind == "migration":
        return not store.migrations.get(key).active
    return store.drains.get(key).state.final


def send_counts(agent_log: Path, names: list[str], *, since: int = 0) -> dict[str, int]:
    """How many migrations the agent started per VM (its "VM <name>: migrating to" line), in the
    log from byte `since` on."""
    try:
        text = agent_log.read_bytes()[since:].decode("utf-8", "replace")
    except FileNotFoundError:
        text = ""
    return {n: len(re.findall(rf"VM {re.escape(n)}: migrating to ", text)) for n in names}


def summary(seconds: list[float]) -> dict:
    """Failover figures for a report: each run, the worst, and the bound the lease settings give."""
    return {"runs": len(seconds), "takeover_s": [round(s, 1) for s in seconds],
            "max_s": round(max(seconds), 1) if seconds else None, "bound_s": worst_takeover_s()}
