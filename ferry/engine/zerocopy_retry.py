"""Zero-copy that fails at start: retry at once on the same destination without it.

Why: zero-copy needs QEMU to lock the pages it sends (RLIMIT_MEMLOCK / the domain's memtune
hard_limit). When that limit is too low QEMU fails the migration in its first sends ("Process
can't lock enough memory for using MSG_ZEROCOPY") or libvirt refuses to start it ("cannot limit
locked memory"), and nothing is wrong with the destination. oVirt just fails; Ferry retries the
same destination once, without zero-copy, and records why (FERRY_ZEROCOPY_RETRY). Pure: the
orchestrator's failure path asks `retry_reason` and uses `plan_without_zerocopy`.
"""
from __future__ import annotations

from typing import Any

# What QEMU and libvirt say when the pages cannot be locked for zero-copy (lower case).
LOCK_FAILURE_TEXTS = ("lock enough memory", "locked memory", "memlock", "msg_zerocopy", "zero-copy", "zerocopy")


def retry_reason(params: dict[str, Any], error: str | None) -> str | None:
    """Why this failed attempt is retried without zero-copy, or None: only when zero-copy was
    sent and the error is about locking memory for it."""
    if not params.get("zerocopy") or not error:
        return None
    text = error.lower()
    if not any(t in text for t in LOCK_FAILURE_TEXTS):
        return None
    return f"zero-copy could not start: {error.strip()}"


def plan_without_zerocopy(plan: dict[str, Any], reason: str) -> dict[str, Any]:
    """The same plan (same destination, same policy) with zero-copy off, the change explained."""
    params = {k: v for k, v in (plan.get("params") or {}).items() if k != "zerocopy"}
    explanation = list(plan.get("explanation") or [])
    explanation.append({"field": "zerocopy", "from": "true", "to": "false",
                        "reason": f"retried without zero-copy: {reason}"})
    flags = [f for f in plan.get("libvirt_flags") or [] if f != "VIR_MIGRATE_ZEROCOPY"]
    return {**plan, "params": params, "libvirt_flags": flags, "explanation": explanation,
            "zerocopy_retry": reason}
