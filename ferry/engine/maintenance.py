"""Host maintenance use cases: ask for it, cancel it, pause/resume its drain, activate the host.

oVirt's states: UP -> PREPARING_FOR_MAINTENANCE (the drain migrates the host's VMs away) ->
MAINTENANCE, back to UP on activate. Each function works on one unit of work (the REST route's)
and records oVirt's audit events (ferry.engine.audit); the drain runner
(ferry.engine.drain_runner) does the migrating. Unknown host: NotFound (404); a request the
host's state does not allow: Conflict (409) saying why; a bad option: InvalidInput naming it.
"""
from __future__ import annotations

from typing import Any

from ferry.common.errors import Conflict, InvalidInput
from ferry.engine import audit
from ferry.engine.db.records import DrainRecord, DrainState, HostStatus, VmRecord, VmStatus
from ferry.engine.db.repos.base import now
from ferry.engine.db.store import Store
from ferry.engine.drain_planner import MIGRATING, ORDERS, QUEUED, SHORTEST
from ferry.engine.drain_progress import progress_view, vm_forecast
from ferry.engine.planner import effective_policy_id
from ferry.engine.services.planning import plan_for_vm

MAX_REASON_CHARS = 1000


def new_item(store: Store, vm: VmRecord) -> dict[str, Any]:
    """A VM's drain item: its forecast and its plan's limits (from a dry run of its plan)."""
    try:
        params = plan_for_vm(store, vm.name).to_dict().get("params") or {}
    except (Conflict, InvalidInput):   # no destination now: the planner will say so
        cluster = store.clusters.get(vm.cluster)
        policy = store.policies.get(effective_policy_id(cluster.options, vm.overrides)[0], field="policy")
        params = {"outgoingLimit": policy.max_migrations, "incomingLimit": policy.max_migrations}
    f = vm_forecast(vm.memory_mib, vm.workload, params)
    active = store.migrations.list(vm=vm.name, active=True)
    return {
        "vm": vm.name, "state": MIGRATING if active else QUEUED, "memory_mib": vm.memory_mib,
        "paused": vm.status is VmStatus.PAUSED, "tried": [], "reason": None,
        "migration_id": active[0].id if active else None,
        "destination": active[0].destination if active else None,
        "forecast_s": f["seconds"], "forecast_mib": f["mib"], "forecast_outcome": f["outcome"],
        "outgoing_limit": int(params.get("outgoingLimit") or 1),
        "incoming_limit": int(params.get("incomingLimit") or 1), "bytes": 0,
    }


def _active_drain(store: Store, host: str) -> DrainRecord | None:
    d = store.drains.latest(host)
    return d if d is not None and d.active else None


def start(store: Store, host: str, *, reason: str | None = None, order: str = SHORTEST,
          user: str | None = None) -> DrainRecord:
    """PREPARING_FOR_MAINTENANCE with a new drain of every VM on the host."""
    h = store.hosts.get(host)
    if order not in ORDERS:
        raise InvalidInput("order", f"must be one of {', '.join(ORDERS)}, got {order!r}")
    if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON_CHARS):
        raise InvalidInput("reason", f"must be a text of at most {MAX_REASON_CHARS} characters")
    if h.status is HostStatus.MAINTENANCE:
        raise Conflict(f"host {host!r} is already in MAINTENANCE")
    if h.status is HostStatus.PREPARING_FOR_MAINTENANCE:
        d = _active_drain(store, host)
        raise Conflict(f"host {host!r} is already PREPARING_FOR_MAINTENANCE (drain {d.id if d else '?'})")
    if h.status is not HostStatus.UP:
        raise Conflict(f"host {host!r} is {h.status.value}; only an UP host can be drained "
                       "(its agent must answer to migrate its VMs away)")
    user = user or "admin"
    items = [new_item(store, vm) for vm in store.vms.list(host=host)]
    drain = store.drains.create(host, order=order, reason=reason or "", user=user, items=items)
    store.hosts.update(host, status=HostStatus.PREPARING_FOR_MAINTENANCE)
    kind = audit.USER_VDS_MAINTENANCE if reason else audit.USER_VDS_MAINTENANCE_WITHOUT_REASON
    store.events.record_audit(kind, host=host, host_name=host, user=user, reason=reason, count=len(items))
    return drain


def current(store: Store, host: str) -> DrainRecord:
    """The host's drain in progress; Conflict when there is none."""
    store.hosts.get(host)
    d = _active_drain(store, host)
    if d is None:
        raise Conflict(f"host {host!r} has no maintenance in progress")
    return d


def cancel(store: Store, host: str, *, abort_running: bool = False, user: str | None = None) -> DrainRecord:
    """Queued migrations are dropped, running ones finish (or are cancelled with abort_running);
    the host goes back UP once nothing of the drain runs (the runner does that)."""
    d = current(store, host)
    if d.state is DrainState.CANCELLING and (d.abort_running or not abort_running):
        raise Conflict(f"the maintenance of host {host!r} is already being cancelled")
    queued = sum(1 for i in d.items if i["state"] in ("queued", "blocked"))
    running = sum(1 for i in d.items if i["state"] == MIGRATING)
    d = store.drains.update(d.id, state=DrainState.CANCELLING, abort_running=abort_running)
    store.events.record_audit(audit.FERRY_MAINTENANCE_CANCELLED, host=host, host_name=host, user=user or "admin",
                              dropped=queued, running=running,
                              what="cancelled too" if abort_running else "left to finish")
    return d


def _switch(store: Store, host: str, user: str | None, *, want: DrainState, to: DrainState,
            refusal: str, event: audit.AuditType) -> DrainRecord:
    """Pause and resume: one state to the other, refused (409) from any other, with its event."""
    d = current(store, host)
    if d.state is not want:
        raise Conflict(f"the drain of host {host!r} is {d.state.value}; {refusal}")
    store.events.record_audit(event, host=host, host_name=host, user=user or "admin")
    return store.drains.update(d.id, state=to)


def pause(store: Store, host: str, *, user: str | None = None) -> DrainRecord:
    return _switch(store, host, user, want=DrainState.ACTIVE, to=DrainState.PAUSED,
                   refusal="only an ACTIVE drain can be paused", event=audit.FERRY_DRAIN_PAUSED)


def resume(store: Store, host: str, *, user: str | None = None) -> DrainRecord:
    return _switch(store, host, user, want=DrainState.PAUSED, to=DrainState.ACTIVE,
                   refusal="only a PAUSED drain can be resumed", event=audit.FERRY_DRAIN_RESUMED)


def activate(store: Store, host: str, *, user: str | None = None):
    """MAINTENANCE -> UP (VDS_ACTIVATE). A host still preparing must have its maintenance
    cancelled first: its running migrations would otherwise race with new incoming ones."""
    h = store.hosts.get(host)
    if h.status is HostStatus.PREPARING_FOR_MAINTENANCE:
        raise Conflict(f"host {host!r} is PREPARING_FOR_MAINTENANCE; cancel the maintenance first "
                       f"(POST /api/hosts/{host}/maintenance/cancel)")
    if h.status is not HostStatus.MAINTENANCE:
        raise Conflict(f"host {host!r} is {h.status.value}, not in MAINTENANCE")
    store.events.record_audit(audit.VDS_ACTIVATE, host=host, host_name=host, user=user or "admin")
    return store.hosts.update(host, status=HostStatus.UP)


def view(store: Store, host: str) -> dict[str, Any]:
    """The one progress view of the host's latest drain (GET /api/hosts/{name}/maintenance)."""
    h = store.hosts.get(host)
    d = store.drains.latest(host)
    if d is None:
        return {"host": host, "host_status": h.status.value, "drain_id": None, "state": None,
                "vms_total": 0, "vms_done": 0, "vms_running": 0, "vms_queued": 0, "bytes_done": 0,
                "bytes_expected": 0, "eta_seconds": None, "running": [], "stuck": [], "items": []}
    migrations = {}
    for i in d.items:
        if i.get("migration_id") and i["state"] == MIGRATING:
            migrations[i["migration_id"]] = store.migrations.get(i["migration_id"]).to_dict()
    out = progress_view(d.to_dict(), h.status.value, migrations)
    out["elapsed_seconds"] = round(((d.finished_at or now()) - d.created_at).total_seconds(), 1) \
        if d.created_at else None
    return out
