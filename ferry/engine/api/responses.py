"""Response bodies of the engine's REST API (Pydantic), so /openapi.json describes every answer.

They describe the JSON forms the records already produce (`to_dict()` in
ferry.engine.db.records, `policy_to_dict`, `MigrationPlan.to_dict`): times are ISO 8601 strings
(UTC), enums their names. Keys a newer engine adds pass through (extra="allow"), so a client
written against this description keeps working.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class PolicyRef(Out):
    id: str
    name: str | None = Field(description="null when the policy no longer exists")


class ParallelOut(Out):
    mode: str = Field(description="AUTO | AUTO_PARALLEL | DISABLED | CUSTOM")
    connections: int | None


class BandwidthOut(Out):
    mode: str = Field(description="AUTO | HYPERVISOR_DEFAULT | CUSTOM")
    custom_mbps: int | None


class ClusterOut(Out):
    id: int
    name: str
    description: str
    policy: PolicyRef
    parallel: ParallelOut
    encrypted: bool
    bandwidth: BandwidthOut
    auto_converge: bool
    compressed: bool
    resilience: str = Field(description="MIGRATE | MIGRATE_HIGHLY_AVAILABLE | DO_NOT_MIGRATE")
    parallel_supported: bool
    created_at: str | None


class HostOut(Out):
    id: int
    name: str
    cluster: str
    address: str
    agent_url: str
    migration_address: str | None
    migration_network_up: bool
    link_speed_mbps: int | None
    status: str = Field(description="UNKNOWN | UP | DOWN | MAINTENANCE")
    zerocopy: str = Field(description="YES | NO | UNKNOWN: what the agent reported")
    capabilities: dict[str, Any] | None
    capabilities_at: str | None
    created_at: str | None


class OverridesOut(Out):
    policy: PolicyRef | None
    parallel: ParallelOut | None
    encrypted: bool | None
    auto_converge: bool | None
    compressed: bool | None
    downtime_ms: int | None


class VmOut(Out):
    id: int
    name: str
    uuid: str
    cluster: str
    host: str | None
    status: str = Field(description="DOWN | UP | PAUSED | MIGRATING")
    memory_mib: int
    vcpus: int
    spec: dict[str, Any]
    workload: dict[str, Any] | None
    overrides: OverridesOut
    created_at: str | None


class ActionOut(Out):
    name: str
    params: list[Any]


class StallingOut(Out):
    limit: int
    action: ActionOut


class PolicyOut(Out):
    id: str
    name: str
    description: str | None
    max_migrations: int | None
    auto_converge: bool | None
    compression: bool | None
    guest_events: bool | None
    zerocopy: bool | None
    init: list[ActionOut]
    stalling: list[StallingOut]
    last_items: list[ActionOut]
    builtin: bool
    legacy: bool


class PlanPolicyOut(Out):
    id: str
    name: str
    origin: str = Field(description="VM override | cluster | requested")


class ExplanationOut(Out):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    field: str
    from_: Any = Field(alias="from")
    to: Any
    reason: str


class PlanOut(Out):
    """What VM.migrate would be sent: its params, the libvirt flags they lead to, and why."""

    vm: str | None
    source: str
    destination: str
    policy: PlanPolicyOut
    params: dict[str, Any] = Field(description="VM.migrate's params, as sent to the source agent")
    libvirt_flags: list[str]
    libvirt_typed_params: dict[str, Any] | None
    flag_notes: list[str]
    flag_warnings: list[str]
    explanation: list[ExplanationOut]
    notes: list[str]
    forecast: ForecastOut | None = Field(None, description="only with ?forecast=true")


class ForecastRangeOut(Out):
    low: float | None = Field(description="seconds, the best case")
    high: float | None = Field(description="seconds, the worst case; null when it never ends")


class ForecastOut(Out):
    """The pre-copy model's forecast (docs/forecast.md)."""

    outcome: str = Field(description="converge | abort | postcopy")
    totalSeconds: float | None = Field(description="null: it never ends (no schedule item stops it)")
    downtimeMs: float | None
    iterations: int
    range: ForecastRangeOut
    inputs: dict[str, Any]
    steps: list[dict[str, Any]]
    reason: str | None = None


class RankedPolicyOut(Out):
    policy: PolicyRef
    outcome: str | None = Field(description="converge | abort | postcopy; null: the policy cannot be used here")
    totalSeconds: float | None
    downtimeMs: float | None
    iterations: int | None
    reason: str | None


class RecommendationOut(Out):
    """Every policy forecast for the VM's measured workload, best first (issue 17 item 1)."""

    vm: str
    source: str
    destination: str
    recommended: PolicyRef | None = Field(description="null: no policy is forecast to finish")
    reason: str
    ranking: list[RankedPolicyOut]
    measured: dict[str, Any] | None = None


class EtaOut(Out):
    seconds: float | None = Field(description="from now; null: it never ends")
    outcome: str = Field(description="converge | abort | postcopy")


class MigrationOut(Out):
    id: str
    vm: str
    source: str | None
    destination: str | None
    state: str = Field(description="PENDING | RUNNING | CANCELLING | SUCCEEDED | FAILED | CANCELLED | ABORTED")
    progress: int
    plan: dict[str, Any] | None
    result: dict[str, Any] | None
    error: str | None
    figures: dict[str, Any] | None
    attempts: list[dict[str, Any]]
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    updated_at: str | None
    eta: EtaOut | None = Field(None, description="while it runs: the model's ETA from the last status sample")


class EventOut(Out):
    id: int
    time: str | None
    severity: str = Field(description="normal | warning | error")
    code: int = Field(description="oVirt's AuditLogType id (Ferry's own from 9100)")
    message: str
    vm: str | None
    host: str | None
    migration_id: str | None


class HealthOut(Out):
    status: str
    database: str = Field(description="sqlite | postgresql")
