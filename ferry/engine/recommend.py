"""Which policy to migrate a VM with: every policy forecast on the same measured workload, ranked.

Why (issue 17 item 1): an admin should not have to know that Minimal downtime aborts a guest
dirtying 80% of the cap while Legacy converges in 30 s. Pure: the candidates (policy, plan,
forecast) in, the ranking and the reason out. Order: outcome first (converge, then post-copy,
then abort: a migration that ends with the VM moved beats one that gives up), then total time
(never-ending last; times within 5% of each other count as equal, the model being no finer),
then downtime. A policy that cannot be planned here (e.g. parallel
migrations not allowed on the cluster) is listed with why, after the others.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from ferry.forecast.model import ABORT, CONVERGE, POSTCOPY

OUTCOME_RANK = {CONVERGE: 0, POSTCOPY: 1, ABORT: 2}
TIME_TIE = 0.05          # totals within 5% rank as equal: downtime decides between them


def time_bucket(total: float | None) -> float:
    """Totals on a 5% logarithmic grid: neighbours within the grid step tie."""
    if total is None:
        return math.inf
    return math.floor(math.log(max(total, 1e-3)) / math.log(1 + TIME_TIE))


@dataclass(frozen=True)
class Candidate:
    policy_id: str
    policy_name: str
    forecast: dict | None          # the forecast's wire form; None when the policy cannot be planned
    unavailable: str | None = None  # why not, then

    def key(self) -> tuple:
        if self.forecast is None:
            return (3, math.inf, math.inf, self.policy_name)
        f = self.forecast
        downtime = math.inf if f.get("downtimeMs") is None else f["downtimeMs"]
        return (OUTCOME_RANK.get(f.get("outcome"), 3), time_bucket(f.get("totalSeconds")), downtime,
                f.get("totalSeconds") or math.inf, self.policy_name)

    def to_wire(self) -> dict:
        f = self.forecast or {}
        return {"policy": {"id": self.policy_id, "name": self.policy_name}, "outcome": f.get("outcome"),
                "totalSeconds": f.get("totalSeconds"), "downtimeMs": f.get("downtimeMs"),
                "iterations": f.get("iterations"), "reason": f.get("reason") or self.unavailable}


def rank(candidates: Iterable[Candidate]) -> list[Candidate]:
    return sorted(candidates, key=Candidate.key)


def _secs(x) -> str:
    return "never" if x is None else f"{x:.1f} s"


def reason(ranked: list[Candidate]) -> str:
    """Why the first one is recommended, in words (or why none is)."""
    planned = [c for c in ranked if c.forecast is not None]
    if not planned:
        return "no policy can be planned for this VM"
    best = planned[0]
    f = best.forecast
    converging = [c for c in planned if c.forecast["outcome"] == CONVERGE]
    if f["outcome"] == CONVERGE:
        others = len(converging) - 1
        only = "; it is the only one forecast to converge"
        tail = (f"; {others} other polic{'y' if others == 1 else 'ies'} converge{'s' if others == 1 else ''} too, "
                "none more than 5% sooner, and it has the least downtime of those as fast" if others else only)
        return (f"{best.policy_name} is forecast to converge in {_secs(f['totalSeconds'])} with "
                f"{f['downtimeMs']:.0f} ms downtime{tail}")
    if f["outcome"] == POSTCOPY:
        return (f"no policy converges in pre-copy; {best.policy_name} switches to post-copy and ends in "
                f"{_secs(f['totalSeconds'])}")
    return (f"no policy is forecast to finish: every one aborts or never converges; {best.policy_name} gives "
            f"up soonest ({_secs(f['totalSeconds'])}). Lower the dirty rate or raise the bandwidth")


def recommendation(candidates: Iterable[Candidate]) -> dict:
    """{recommended: {id, name} | null, reason, ranking: [...]} (the REST answer's core)."""
    ranked = rank(candidates)
    planned = [c for c in ranked if c.forecast is not None]
    finishing = [c for c in planned if c.forecast["outcome"] in (CONVERGE, POSTCOPY)]
    best = finishing[0] if finishing else None
    return {"recommended": None if best is None else {"id": best.policy_id, "name": best.policy_name},
            "reason": reason(ranked), "ranking": [c.to_wire() for c in ranked]}
