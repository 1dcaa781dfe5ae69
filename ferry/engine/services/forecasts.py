"""The forecast of a VM's migration from live inventory: plan, measure, calibrate, forecast.

Used by `POST /api/vms/{vm}/plan?forecast=true` (and so `ferry plan VM --forecast`). The plan
comes from ferry.engine.services.planning; the dirty rate and touched memory from the source
agent's VM.getDirtyRate (bias-corrected on the agent); the host pair's bandwidth from the
throughput of earlier migrations between the same two hosts, which the engine keeps in its
pair_throughput table (apart from VM and migration records, which a VM's deletion removes).
The measurement is kept on the VM, so a migration started soon after carries it for its live
ETA (ferry.engine.services.migrations). The pure part (plan + figures -> model inputs) is ferry.engine.forecasting.
"""
from __future__ import annotations

import time

from ferry.common.errors import Conflict, InvalidInput, OperationFailed
from ferry.common.jsonrpc import JsonRpcError
from ferry.engine import forecasting as fx
from ferry.engine.db.store import Store
from ferry.engine.monitor import AgentFactory
from ferry.engine.planner import MigrationPlan
from ferry.engine.recommend import Candidate, recommendation
from ferry.engine.services.planning import plan_for_vm
from ferry.engine.validation import check_object

DEFAULT_DIRTY_SECONDS = 2        # VM.getDirtyRate's window: the band under 4 s is the narrower one
HISTORY_LIMIT = 1000             # earlier migrations looked at for the pair's throughput


def pair_calibration(store: Store, plan: MigrationPlan) -> tuple[float | None, float | None, int]:
    """(MiB/s, spread, samples) measured on earlier migrations source -> destination with the
    plan's connection count (see ferry.engine.forecasting.pair_samples)."""
    rows = store.throughput.list(source=plan.source, destination=plan.destination, limit=HISTORY_LIMIT)
    samples = fx.pair_samples(rows, parallel=plan.params.parallel)
    mibs, spread = fx.calibration(samples)
    return mibs, spread, len(samples)


def pair_final_floor(store: Store, plan: MigrationPlan) -> float | None:
    """For a parallel plan with no samples of its own connection count: the pair's calibrated
    one-connection speed (the final copy's floor, ferry.engine.forecasting.Measured); else None.
    The lab's parallel runs had no calibration, so their final copies were forecast at the cap:
    448-492 ms of downtime forecast for 53 ms measured."""
    if not plan.params.parallel:
        return None
    rows = store.throughput.list(source=plan.source, destination=plan.destination, limit=HISTORY_LIMIT)
    if fx.pair_samples(rows, parallel=plan.params.parallel):
        return None
    return fx.calibration(fx.pair_samples(rows, parallel=None))[0]


def measure_vm(agent: AgentFactory, agent_url: str, vm_uuid: str, seconds: int) -> dict:
    """VM.getDirtyRate on the source agent; its refusals become the engine's errors."""
    try:
        return agent(agent_url).call("VM.getDirtyRate", {"vmID": vm_uuid, "seconds": seconds})
    except JsonRpcError as exc:
        if exc.name in ("migrationInProgress", "vmNotRunning", "noVM"):
            raise Conflict(f"cannot measure the VM's dirty rate: {exc.message}") from None
        raise OperationFailed(f"VM.getDirtyRate on {agent_url} failed: {exc.message}") from None


def forecast_for_vm(store: Store, agent: AgentFactory, vm_ref: str, *, to: str | None = None,
                    policy: str | None = None, seconds: int = DEFAULT_DIRTY_SECONDS,
                    pattern: str = fx.LINEAR) -> dict:
    """The plan's dict with a `forecast` object added (issue 14 item 3)."""
    plan = plan_for_vm(store, vm_ref, to=to, policy=policy)
    vm = store.vms.get(vm_ref)
    source, destination = store.hosts.get(plan.source), store.hosts.get(plan.destination)
    answer = measure_vm(agent, source.agent_url, vm.uuid, seconds)
    mibs, spread, n = pair_calibration(store, plan)
    measured = fx.measured_from_dirty_rate(
        answer, memory_mib=float(vm.memory_mib), measured_bandwidth_mibs=mibs, bandwidth_spread=spread,
        bandwidth_samples=n, dirty_pattern=pattern, link_mibs=fx.link_mibs(source.link_speed_mbps, destination.link_speed_mbps),
        final_floor_mibs=pair_final_floor(store, plan))
    # The use case checks what the repository stores (issue 10: repositories only persist).
    store.vms.set_measured(vm.name, check_object("measured", fx.premigration_record(measured, time.time())))
    return with_forecast(plan, measured)


def recommend_for_vm(store: Store, agent: AgentFactory, vm_ref: str, *, to: str | None = None,
                     seconds: int = DEFAULT_DIRTY_SECONDS, pattern: str = fx.LINEAR) -> dict:
    """Every policy (built-in and custom) forecast on one measurement of the VM, ranked
    (ferry.engine.recommend; issue 17 item 1). The destination is fixed first, so all face
    the same host pair."""
    first = plan_for_vm(store, vm_ref, to=to)
    vm = store.vms.get(vm_ref)
    source, destination = store.hosts.get(first.source), store.hosts.get(first.destination)
    answer = measure_vm(agent, source.agent_url, vm.uuid, seconds)
    link = fx.link_mibs(source.link_speed_mbps, destination.link_speed_mbps)
    candidates = []
    for policy in store.policies.list():
        try:
            plan = plan_for_vm(store, vm_ref, to=destination.name, policy=policy.id)
        except InvalidInput as exc:
            candidates.append(Candidate(policy.id, policy.name, None, f"cannot be used here: {exc.reason}"))
            continue
        mibs, spread, n = pair_calibration(store, plan)
        measured = fx.measured_from_dirty_rate(answer, memory_mib=float(vm.memory_mib), measured_bandwidth_mibs=mibs,
                                               bandwidth_spread=spread, bandwidth_samples=n, dirty_pattern=pattern,
                                               link_mibs=link, final_floor_mibs=pair_final_floor(store, plan))
        candidates.append(Candidate(policy.id, policy.name, fx.forecast_wire(fx.plan_forecast(plan, measured), measured)))
    return {"vm": vm.name, "source": first.source, "destination": first.destination,
            "measured": {k: answer.get(k) for k in ("dirtyRateMiBs", "estimate", "memoryMiB", "touchedMiB", "mode",
                                                    "seconds")},
            **recommendation(candidates)}


def with_forecast(plan: MigrationPlan, measured: fx.Measured) -> dict:
    body = plan.to_dict()
    body["forecast"] = fx.forecast_wire(fx.plan_forecast(plan, measured), measured)
    return body
