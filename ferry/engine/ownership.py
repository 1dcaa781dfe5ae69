"""Which work this engine owns: its leases, their heartbeat, and the takeover of expired ones.

Several engines may share one PostgreSQL database (issue 18 item 3). Each migration and each
drain is then owned by one engine through a lease (ferry.engine.lease_rules decides, the SQL is
in ferry.engine.db.repos.leases): the engine that accepts a migration creates its lease in the
same transaction as the record; the drain runner claims a drain before it steps it. Every
HEARTBEAT_S the heartbeat thread renews this engine's leases, forgets those it no longer finds
(another engine took them: the work stops being acted on here), and hands the expired leases of
other engines to the takeover callbacks (the orchestrator follows those migrations again,
reconciling with the agents). On SIGTERM the engine releases its leases at once.

Fencing: every write an owner makes to its work's state goes through `fence(store, kind, key)`
first, in the same transaction: the lease row is read FOR SHARE (a claim skips locked rows, so
no takeover can slip in before the commit) and must still be this engine's at the epoch it
claimed, unexpired (lease_rules.fenced). An engine that was paused or cut off past its ttl
thus gets `Fenced` instead of overwriting what the new owner wrote, and stops acting on it.

Host monitoring is shared too: each engine keeps an ENGINE lease of its own id, renewed by the
same heartbeat; `hosts_to_refresh` gives this engine its rendezvous-hash share of the hosts
over the live engines (lease_rules.hosts_to_refresh), so a dead engine's hosts go to the
survivors once its ENGINE lease expires.

SQLite is the single-engine default: `SoleOwner` owns everything and writes no lease.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

from ferry.engine import lease_rules as rules
from ferry.engine.db import Database, Store

log = logging.getLogger("ferry.engine.ownership")

Takeover = Callable[[], None]
FORGET_DEAD_ENGINES_S = 3600.0   # an ENGINE lease expired this long is deleted (its engine is gone)


class Fenced(RuntimeError):
    """A write to work this engine no longer owns at its epoch: refused, nothing written."""


def default_engine_id() -> str:
    """FERRY_ENGINE_ID, else one unique to this process (host, pid, random): two engines never
    share an id by accident; a stable id lets a restarted engine take its own leases back at once."""
    given = os.environ.get("FERRY_ENGINE_ID")
    if given:
        return rules.check_engine_id(given)
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class SoleOwner:
    """The single engine (SQLite): everything is its own, nothing is written."""

    shared = False

    def __init__(self, engine_id: str = "sole"):
        self.engine_id = engine_id

    def take_new(self, store: Store, kind: str, key: str) -> None:
        return None

    def claim(self, kind: str, key: str) -> rules.Claim:
        return rules.Claim(rules.ClaimOutcome.RENEWED, None, self.engine_id, "the only engine")

    def holds(self, kind: str, key: str) -> bool:
        return True

    def confirm(self, kind: str, key: str) -> bool:
        return True

    def release(self, kind: str, key: str) -> None:
        return None

    def claimable(self, kind: str, keys: list[str]) -> list[str]:
        return []

    def fence(self, store: Store, kind: str, key: str) -> None:
        return None

    def hosts_to_refresh(self, hosts: list[str]) -> list[str]:
        return list(hosts)

    def on_takeover(self, callback: Takeover) -> None:
        return None

    def start(self) -> None:
        return None

    def stop(self, release: bool = True) -> None:
        return None


class Ownership:
    """The leases of one engine among several on PostgreSQL (see the module docstring)."""

    shared = True

    def __init__(self, db: Database, engine_id: str, *, ttl_s: float = rules.LEASE_TTL_S,
                 heartbeat_s: float = rules.HEARTBEAT_S):
        self.db = db
        self.engine_id = rules.check_engine_id(engine_id)
        self.ttl_s = ttl_s
        self.heartbeat_s = heartbeat_s
        rules.worst_takeover_s(ttl_s, heartbeat_s)   # refuses a heartbeat too slow for the ttl
        # (kind, key) -> (epoch, local deadline, when claimed)
        self._held: dict[tuple[str, str], tuple[int, float, float]] = {}
        self._lock = threading.Lock()
        self._callbacks: list[Takeover] = []
        self._live: tuple[str, ...] = ()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- one lease -----------------------------------------------------------------------------
    def take_new(self, store: Store, kind: str, key: str) -> None:
        """The lease of work this engine just created, in the creating transaction."""
        t = time.monotonic()
        decision = store.leases.claim(kind, key, self.engine_id, self.ttl_s)
        if not decision.granted:   # a fresh uuid: only a bug gets here
            raise RuntimeError(f"cannot own new {kind} {key}: {decision.why}")
        self._keep(kind, key, decision.lease.epoch, t)

    def claim(self, kind: str, key: str) -> rules.Claim:
        t = time.monotonic()
        with self.db.unit_of_work() as store:
            decision = store.leases.claim(kind, key, self.engine_id, self.ttl_s)
        if decision.granted:
            self._keep(kind, key, decision.lease.epoch, t)
            if decision.outcome is rules.ClaimOutcome.TAKEN_OVER:
                log.warning("%s %s: taken over from %s", kind, key, decision.why)
        return decision

    def holds(self, kind: str, key: str) -> bool:
        """Whether this engine may act on the work now (its own clock; no database round trip)."""
        with self._lock:
            held = self._held.get((kind, key))
        return held is not None and rules.locally_held(held[1], time.monotonic())

    def confirm(self, kind: str, key: str) -> bool:
        """Before an action that must never happen twice (VM.migrate): the lease read under a
        row lock is still this engine's, at the epoch it claimed, with time left."""
        with self._lock:
            held = self._held.get((kind, key))
        if held is None or not rules.locally_held(held[1], time.monotonic()):
            return False
        with self.db.unit_of_work() as store:
            lease = store.leases.get(kind, key, lock=True)
            return rules.may_act(lease, me=self.engine_id, epoch=held[0], now=store.leases.now())

    def release(self, kind: str, key: str) -> None:
        with self._lock:
            self._held.pop((kind, key), None)
        try:
            with self.db.unit_of_work() as store:
                store.leases.release(kind, key, self.engine_id)
        except Exception:  # noqa: BLE001 - an unreleased lease just expires
            log.exception("releasing %s %s", kind, key)

    def claimable(self, kind: str, keys: list[str]) -> list[str]:
        with self.db.unit_of_work() as store:
            return store.leases.claimable(kind, keys, self.engine_id)

    def fence(self, store: Store, kind: str, key: str) -> None:
        """At the start of a unit of work that writes the state of `kind`/`key`: raise Fenced
        (and stop holding it) unless the lease is still this engine's at the epoch it claimed.
        The row stays share-locked until the commit (see the module docstring)."""
        with self._lock:
            held = self._held.get((kind, key))
        if held is None:
            why = "this engine does not hold it"
        else:
            why = rules.fenced(store.leases.get(kind, key, share=True), me=self.engine_id, epoch=held[0],
                               now=store.leases.now())
        if why is None:
            return
        with self._lock:
            if self._held.get((kind, key)) == held:
                self._held.pop((kind, key), None)
        log.warning("%s %s: write refused, fenced: %s; engine %s stops acting on it", kind, key, why, self.engine_id)
        raise Fenced(f"{kind} {key}: {why}")

    def hosts_to_refresh(self, hosts: list[str]) -> list[str]:
        """This engine's share of `hosts` over the live engines of the last heartbeat (no
        database round trip: the monitor asks every loop)."""
        return rules.hosts_to_refresh(self.engine_id, hosts, self._live)

    @property
    def live_engines(self) -> tuple[str, ...]:
        return self._live

    def _keep(self, kind: str, key: str, epoch: int, sent_at: float) -> None:
        with self._lock:
            self._held[(kind, key)] = (epoch, sent_at + self.ttl_s, sent_at)

    # ---- the heartbeat -------------------------------------------------------------------------
    def on_takeover(self, callback: Takeover) -> None:
        """Called every heartbeat, after the renewal: look for expired work and claim it."""
        self._callbacks.append(callback)

    def start(self) -> None:
        self.claim(rules.ENGINE, self.engine_id)
        self._read_live()
        self._thread = threading.Thread(target=self._loop, name="lease-heartbeat", daemon=True)
        self._thread.start()

    def stop(self, release: bool = True) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if release:
            with self._lock:
                self._held.clear()
            try:
                with self.db.unit_of_work() as store:
                    n = store.leases.release_all(self.engine_id)
                log.info("engine %s stopping: released %d leases", self.engine_id, n)
            except Exception:  # noqa: BLE001 - they expire by themselves
                log.exception("releasing the leases of engine %s", self.engine_id)

    def renew(self) -> set[tuple[str, str]]:
        """Renew every lease of this engine; returns those lost (taken over meanwhile)."""
        t = time.monotonic()
        with self.db.unit_of_work() as store:
            found = store.leases.renew_all(self.engine_id, self.ttl_s)
        if (rules.ENGINE, self.engine_id) not in found:   # deleted meanwhile: this engine is live again
            with self.db.unit_of_work() as store:
                store.leases.claim(rules.ENGINE, self.engine_id, self.engine_id, self.ttl_s)
        self._read_live()
        with self._lock:   # a lease claimed while the renewal ran is not in `found`, and not lost
            lost = {k for k, (epoch, _, since) in self._held.items()
                    if since < t and (k not in found or found[k].epoch != epoch)}
            for k in lost:
                del self._held[k]
            for k, (epoch, _deadline, since) in self._held.items():
                if k in found:
                    self._held[k] = (epoch, t + self.ttl_s, since)
        for kind, key in sorted(lost):
            log.warning("%s %s: lease lost (another engine owns it now): no longer acted on here", kind, key)
        return lost

    def _read_live(self) -> None:
        with self.db.unit_of_work() as store:
            live = rules.live_engines(store.leases.of_kind(rules.ENGINE), store.leases.now())
            store.leases.forget_expired(rules.ENGINE, FORGET_DEAD_ENGINES_S)
        if live != self._live:
            log.info("live engines sharing the host monitoring: %s", ", ".join(live) or "none")
        self._live = live

    def _loop(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                self.renew()
            except Exception:  # noqa: BLE001 - the next beat tries again; holds() runs out meanwhile
                log.exception("renewing the leases of engine %s", self.engine_id)
                continue
            for callback in self._callbacks:
                try:
                    callback()
                except Exception:  # noqa: BLE001
                    log.exception("takeover scan failed")


def ownership_for(db: Database, engine_id: str | None = None) -> SoleOwner | Ownership:
    """Leases on PostgreSQL (several engines may share it); the sole owner on SQLite."""
    if db.engine.dialect.name == "postgresql":
        return Ownership(db, engine_id or default_engine_id())
    return SoleOwner(engine_id or "sole")
