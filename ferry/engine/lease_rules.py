"""The lease rules of several engines on one database (issue 18 item 3), pure.

Each migration and each drain is owned by one engine at a time through a lease row: the owner's
engine id, an expiry the owner pushes forward with a heartbeat, and an epoch that grows with
every change of owner. These functions decide who may claim, when a lease has run out, whether
an owner may still act, and what an engine that takes a migration over must do first. Times
are the database's clock (`now()` on PostgreSQL), so engines with skewed clocks agree; the SQL
is in ferry.engine.db.repos.leases and the threads in ferry.engine.ownership.
"""
from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

LEASE_TTL_S = 10.0      # a lease not renewed for this long is free for another engine
HEARTBEAT_S = 2.0       # how often an owner renews its leases and looks for expired ones
ACT_MARGIN_S = 3.0      # an owner acts (e.g. sends VM.migrate) only with at least this much lease left
MIGRATION = "migration"
DRAIN = "drain"
ENGINE = "engine"       # one per live engine, key = its id: who shares the host monitoring
KINDS = (MIGRATION, DRAIN, ENGINE)


@dataclass(frozen=True)
class Lease:
    """A lease row as read: who owns `kind`/`key` until when, and how often it changed hands."""

    kind: str
    key: str
    owner: str
    expires_at: datetime
    epoch: int = 1


class ClaimOutcome(enum.Enum):
    NEW = "new"              # nobody held it: granted, epoch 1
    RENEWED = "renewed"      # the claimant already held it: expiry pushed forward
    TAKEN_OVER = "taken-over"  # another engine's lease ran out: granted, epoch + 1
    REFUSED = "refused"      # another engine holds it and its lease is still good


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    lease: Lease | None      # the lease to write (None when refused)
    previous_owner: str | None
    why: str

    @property
    def granted(self) -> bool:
        return self.outcome is not ClaimOutcome.REFUSED


def check_engine_id(engine_id: str) -> str:
    """An engine id is 1-128 printable characters without spaces (it is stored and logged)."""
    if not isinstance(engine_id, str) or not engine_id or len(engine_id) > 128:
        raise ValueError("engine id must be 1-128 characters")
    if any(c.isspace() or not c.isprintable() for c in engine_id):
        raise ValueError(f"engine id {engine_id!r} must have no spaces or control characters")
    return engine_id


def expired(lease: Lease, now: datetime) -> bool:
    """A lease is expired from its expiry on (the owner had until then to renew it)."""
    return now >= lease.expires_at


def claim(current: Lease | None, *, kind: str, key: str, claimant: str, now: datetime,
          ttl_s: float = LEASE_TTL_S) -> Claim:
    """Who may claim: anyone a free lease, its owner always (renewal), another engine only
    once the owner's lease has expired -- then the epoch grows, so the old owner's fenced
    writes (ferry.engine.ownership) see it lost."""
    if kind not in KINDS:
        raise ValueError(f"lease kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if ttl_s <= 0:
        raise ValueError(f"lease ttl must be above 0 s, got {ttl_s}")
    check_engine_id(claimant)
    until = now + timedelta(seconds=ttl_s)
    if current is None:
        return Claim(ClaimOutcome.NEW, Lease(kind, key, claimant, until, 1), None, "nobody held it")
    if (current.kind, current.key) != (kind, key):
        raise ValueError(f"lease of {current.kind} {current.key} given for {kind} {key}")
    if current.owner == claimant:
        return Claim(ClaimOutcome.RENEWED, Lease(kind, key, claimant, max(until, current.expires_at), current.epoch),
                     claimant, "already ours")
    if not expired(current, now):
        left = (current.expires_at - now).total_seconds()
        return Claim(ClaimOutcome.REFUSED, None, current.owner,
                     f"engine {current.owner} holds it for {left:.1f} s more")
    late = (now - current.expires_at).total_seconds()
    return Claim(ClaimOutcome.TAKEN_OVER, Lease(kind, key, claimant, until, current.epoch + 1), current.owner,
                 f"engine {current.owner} let it expire {late:.1f} s ago")


def may_act(lease: Lease | None, *, me: str, epoch: int, now: datetime, margin_s: float = ACT_MARGIN_S) -> bool:
    """Whether the engine `me`, which claimed at `epoch`, may still act on the work: the lease
    is its own, unchanged since, and has at least `margin_s` left (so it cannot run out while
    the action is on its way, and no new owner can have begun)."""
    if lease is None or lease.owner != me or lease.epoch != epoch:
        return False
    return (lease.expires_at - now).total_seconds() >= margin_s


def fenced(lease: Lease | None, *, me: str, epoch: int, now: datetime) -> str | None:
    """Why a write by `me`, which claimed the work at `epoch`, must be refused (None: allowed).
    Every write an owner makes to its work's state carries this check in the same transaction,
    under the lease row's lock: an engine that was paused or cut off past its expiry finds the
    lease another engine's (a higher epoch) or run out, and its stale write is not made."""
    if lease is None:
        return "the lease is gone (released or never ours)"
    if lease.owner != me:
        return f"engine {lease.owner} owns it now (epoch {lease.epoch}, ours was {epoch})"
    if lease.epoch != epoch:
        return f"it changed hands since we claimed it (epoch {lease.epoch}, ours was {epoch})"
    if expired(lease, now):
        return f"our lease ran out {(now - lease.expires_at).total_seconds():.1f} s ago"
    return None


def live_engines(leases: list[Lease], now: datetime) -> tuple[str, ...]:
    """The engines whose ENGINE lease is still good, sorted: those the host monitoring is shared
    among. A killed engine drops out once its lease expires (at most a ttl after its last beat)."""
    return tuple(sorted({le.owner for le in leases if le.kind == ENGINE and not expired(le, now)}))


def host_weight(engine_id: str, host: str) -> int:
    """A stable pseudo-random weight of (engine, host), the same in every process."""
    digest = hashlib.blake2b(f"{engine_id}\0{host}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def refreshed_by(host: str, engines: tuple[str, ...] | list[str]) -> str | None:
    """Which of the live `engines` refreshes `host`: the one with the highest weight for it
    (rendezvous hashing). Every engine computes the same answer from the same list, so no
    coordination is needed; an engine that dies or joins moves only its own share of hosts."""
    if not engines:
        return None
    return max(engines, key=lambda e: (host_weight(e, host), e))


def hosts_to_refresh(me: str, hosts: list[str], engines: tuple[str, ...] | list[str]) -> list[str]:
    """The hosts `me` refreshes: its share, or all of them when it does not see itself live
    (just started, or its own beat is late: better refreshed twice than not at all)."""
    if me not in engines:
        return list(hosts)
    return [h for h in hosts if refreshed_by(h, engines) == me]


def locally_held(deadline: float | None, now: float, margin_s: float = ACT_MARGIN_S) -> bool:
    """An owner that has not managed to renew (database away) stops acting `margin_s` before
    its last known expiry, before any other engine may take the lease. `deadline` and `now` are
    the owner's own monotonic clock: the moment it sent its last successful renewal plus the
    ttl, which is never later than the expiry the database wrote."""
    return deadline is not None and deadline - now >= margin_s


class TakeoverStep(enum.Enum):
    FOLLOW = "follow"          # in flight: follow it, asking both agents what libvirt says; never resend
    FAIL_UNSENT = "fail-unsent"  # PENDING: VM.migrate was never sent (RUNNING is written before)
    RELEASE = "release"        # it ended meanwhile: nothing to do but let the lease go


def takeover_step(state: str) -> TakeoverStep:
    """What a takeover (or an engine restart) must do first with a migration in `state`."""
    if state == "PENDING":
        return TakeoverStep.FAIL_UNSENT
    if state in ("RUNNING", "CANCELLING"):
        return TakeoverStep.FOLLOW
    if state in ("SUCCEEDED", "FAILED", "CANCELLED", "ABORTED"):
        return TakeoverStep.RELEASE
    raise ValueError(f"unknown migration state {state!r}")


def send_doubt_left(started_at: datetime | None, now: datetime, send_doubt_s: float) -> float:
    """Seconds for which a VM.migrate the previous owner may have sent can still start a job:
    until then a source without a job is not "never sent" (no rerun). Counted from when the
    record went RUNNING (written just before VM.migrate); unknown start: the whole window."""
    if started_at is None:
        return send_doubt_s
    return min(send_doubt_s, max(0.0, send_doubt_s - (now - started_at).total_seconds()))   # skew: never longer


def worst_takeover_s(ttl_s: float = LEASE_TTL_S, heartbeat_s: float = HEARTBEAT_S) -> float:
    """The takeover time this configuration guarantees at worst: the lease runs out at most
    `ttl_s` after the owner's last renewal, and a survivor looks every `heartbeat_s`."""
    if heartbeat_s <= 0 or ttl_s <= 0:
        raise ValueError("ttl and heartbeat must be above 0 s")
    if heartbeat_s * 2 >= ttl_s - ACT_MARGIN_S:
        raise ValueError(f"heartbeat {heartbeat_s} s too slow for ttl {ttl_s} s: an owner must renew "
                         f"at least twice before it stops acting ({ACT_MARGIN_S} s before the expiry)")
    return ttl_s + heartbeat_s
