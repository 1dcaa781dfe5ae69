"""Request bodies of the engine's REST API (Pydantic), and their conversion to value types.

Pydantic checks shapes and types (errors name the field by its JSON path); the value types
and ferry.engine.validation check meaning (ranges, known names, the zero-copy gate) and raise
InvalidInput naming the field. Response bodies are in ferry.engine.api.responses. Settings that
have a short text form accept it too: parallel "CUSTOM:8" or 8, bandwidth "CUSTOM:5000" or 5000.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ferry.common.errors import InvalidInput
from ferry.engine.options import BandwidthMode, BandwidthSetting, ParallelMode, ParallelSetting, short_form


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def given(self) -> dict[str, Any]:
        """Only the fields the client sent (PATCH semantics: absent = unchanged)."""
        return {k: getattr(self, k) for k in self.model_fields_set}


def _mode_and_number(value: Any, number_key: str) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return {"mode": "CUSTOM", number_key: value}
    if isinstance(value, str):
        mode, number = short_form(value)
        return {"mode": mode} if number is None else {"mode": mode, number_key: number}
    return value


class ParallelBody(Body):
    """Parallel migration connections: AUTO, AUTO_PARALLEL, DISABLED, or CUSTOM with 2..255."""

    mode: str = Field(description="AUTO | AUTO_PARALLEL | DISABLED | CUSTOM")
    connections: int | None = Field(None, description="with CUSTOM: 2..255")

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        return _mode_and_number(value, "connections")

    def to_setting(self) -> ParallelSetting:
        try:
            mode = ParallelMode(self.mode.upper())
        except ValueError:
            raise InvalidInput("parallel.mode", f"unknown mode {self.mode!r} (one of "
                                                f"{', '.join(m.value for m in ParallelMode)})") from None
        return ParallelSetting(mode, self.connections)


class BandwidthBody(Body):
    """Migration bandwidth: AUTO (slower host link), HYPERVISOR_DEFAULT, or CUSTOM Mbps."""

    mode: str = Field(description="AUTO | HYPERVISOR_DEFAULT | CUSTOM")
    custom_mbps: int | None = Field(None, description="with CUSTOM: the bandwidth in Mbps")

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        return _mode_and_number(value, "custom_mbps")

    def to_setting(self) -> BandwidthSetting:
        try:
            mode = BandwidthMode(self.mode.upper())
        except ValueError:
            raise InvalidInput("bandwidth.mode", f"unknown mode {self.mode!r} (one of "
                                                 f"{', '.join(m.value for m in BandwidthMode)})") from None
        return BandwidthSetting(mode, self.custom_mbps)



def _cluster_changes(given: dict[str, Any]) -> dict[str, Any]:
    changes = {}
    for key, value in given.items():
        if value is None:
            raise InvalidInput(key, "cannot be null")
        if isinstance(value, (ParallelBody, BandwidthBody)):
            value = value.to_setting()
        changes[key] = value
    return changes


class ClusterUpdate(Body):
    description: str | None = None
    policy: str | None = Field(None, description="policy name or id")
    parallel: ParallelBody | None = None
    encrypted: bool | None = None
    bandwidth: BandwidthBody | None = None
    auto_converge: bool | None = None
    compressed: bool | None = None
    resilience: str | None = Field(None, description="MIGRATE | MIGRATE_HIGHLY_AVAILABLE | DO_NOT_MIGRATE")
    parallel_supported: bool | None = Field(None, description="oVirt's cluster-level gate for parallel "
                                                              "(and so zero-copy) migrations")

    def changes(self) -> dict[str, Any]:
        return _cluster_changes(self.given())


class ClusterCreate(ClusterUpdate):
    name: str

    def changes(self) -> dict[str, Any]:
        given = self.given()
        given.pop("name", None)
        return _cluster_changes(given)


class HostUpdate(Body):
    cluster: str | None = None
    address: str | None = None
    agent_url: str | None = None
    migration_address: str | None = None
    migration_network_up: bool | None = None
    link_speed_mbps: int | None = None
    status: str | None = Field(None, description="UNKNOWN | UP | DOWN | MAINTENANCE")
    capabilities: dict[str, Any] | None = Field(None, description="the agent's last Host.getCapabilities")

    def changes(self) -> dict[str, Any]:
        given = self.given()
        for key in ("cluster", "address", "agent_url", "status", "migration_network_up"):
            if key in given and given[key] is None:
                raise InvalidInput(key, "cannot be null")
        return given


class HostCreate(HostUpdate):
    name: str
    cluster: str
    address: str = Field(description="the agent's (management) address")

    def changes(self) -> dict[str, Any]:
        given = super().changes()
        for key in ("name", "cluster", "address"):
            given.pop(key, None)
        return given


class OverridesBody(Body):
    """Per-VM overrides; null = inherit the cluster's. In a PATCH only the keys sent change."""

    policy: str | None = None
    parallel: ParallelBody | None = None
    encrypted: bool | None = None
    auto_converge: bool | None = None
    compressed: bool | None = None
    downtime_ms: int | None = None

    def changes(self) -> dict[str, Any]:
        given = self.given()
        if isinstance(given.get("parallel"), ParallelBody):
            given["parallel"] = given["parallel"].to_setting()
        return given


class VmUpdate(Body):
    memory_mib: int | None = None
    vcpus: int | None = None
    kernel: str | None = None
    initrd: str | None = None
    cmdline: str | None = None
    accel: str | None = None
    memtune_hard_limit_kib: int | None = None
    console_log: str | None = None
    emulator: str | None = None
    machine: str | None = None
    cluster: str | None = None
    host: str | None = Field(None, description="the host it runs on; null = not running")
    status: str | None = Field(None, description="DOWN | UP | PAUSED | MIGRATING")
    workload: dict[str, Any] | None = None
    overrides: OverridesBody | None = None

    _NULLABLE = ("initrd", "memtune_hard_limit_kib", "console_log", "host", "workload", "status", "overrides")

    def split(self) -> tuple[dict[str, Any], dict[str, Any] | None]:
        given = self.given()
        for key, value in given.items():
            if value is None and key not in self._NULLABLE:
                raise InvalidInput(key, "cannot be null")
        overrides = given.pop("overrides", None)
        if given.get("status", "") is None:
            given.pop("status")
        return given, (overrides.changes() if overrides is not None else None)


class VmCreate(Body):
    name: str
    cluster: str
    memory_mib: int
    vcpus: int
    kernel: str
    initrd: str | None = None
    cmdline: str = ""
    uuid: str | None = None
    accel: str | None = None
    memtune_hard_limit_kib: int | None = None
    console_log: str | None = None
    emulator: str | None = None
    machine: str | None = None
    host: str | None = None
    status: str | None = None
    workload: dict[str, Any] | None = None
    overrides: OverridesBody | None = None

    def spec(self) -> dict[str, Any]:
        keys = ("name", "memory_mib", "vcpus", "kernel", "initrd", "cmdline", "uuid", "accel",
                "memtune_hard_limit_kib", "console_log", "emulator", "machine")
        return {k: getattr(self, k) for k in keys if k in self.model_fields_set and getattr(self, k) is not None}


class ActionBody(Body):
    name: str = Field(description="setDowntime | postcopy | abort")
    params: list[int | str] = Field(default_factory=list, description="setDowntime: [milliseconds]")

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value


class StallingBody(Body):
    limit: int
    action: ActionBody


class PolicyBody(Body):
    """A custom migration policy (the form GET returns; builtin/legacy must be false)."""

    id: str | None = None
    name: str
    description: str | None = None
    max_migrations: int | None = None
    auto_converge: bool | None = None
    compression: bool | None = None
    guest_events: bool | None = None
    zerocopy: bool | None = None
    init: list[ActionBody] | None = None
    stalling: list[StallingBody] | None = None
    last_items: list[ActionBody] | None = None
    builtin: bool | None = None
    legacy: bool | None = None

    def data(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True, exclude_none=True)


class PlanRequest(Body):
    to: str | None = Field(None, description="destination host; null = the one the engine would pick")
    policy: str | None = Field(None, description="policy name or id; null = the VM's effective policy")
