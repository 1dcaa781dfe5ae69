"""Request bodies of the engine's REST API (Pydantic), and their conversion to value types.

Pydantic checks shapes and types (errors name the field by its JSON path); the value types
and ferry.engine.validation check meaning (ranges, known names, the zero-copy gate) and raise
InvalidInput naming the field. Response bodies are in ferry.engine.api.responses. Settings that
have a short text form accept it too: parallel "CUSTOM:8" or 8, bandwidth "CUSTOM:5000" or 5000.

Every string is bounded and refuses NUL and lone surrogates (`Ref`, `Text`, `PathText`), and
every integer has the bounds the engine and the agents use (`Int(lo, hi)`), so the OpenAPI
document states them and an out-of-range value is a 422 naming the field, never a value that
reaches the database (SQLite's integers are 64-bit).
"""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from ferry.common.errors import InvalidInput
from ferry.engine import validation as v
from ferry.engine import vm_validation as vv
from ferry.engine.options import (
    BandwidthMode,
    BandwidthSetting,
    ParallelMode,
    ParallelSetting,
    short_form,
)
from ferry.engine.policies import MAX_MIGRATIONS_LIMIT, MAX_STALLING_LIMIT
from ferry.protocol.schedule import MAX_DOWNTIME_MS as MAX_ACTION_DOWNTIME_MS


def _storable(value: str) -> str:
    problem = v.text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _one_line(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError("must be one line")
    return value


def _text(max_length: int, *, one_line: bool = True, **kw: Any) -> Any:
    checks = [AfterValidator(_storable)] + ([AfterValidator(_one_line)] if one_line else [])
    return Annotated[str, Field(max_length=max_length, **kw), *checks]


def Int(lo: int, hi: int, **kw: Any) -> Any:  # noqa: N802 - a type, read as one
    """An integer within lo..hi (stated in the OpenAPI document)."""
    return Annotated[int, Field(ge=lo, le=hi, **kw)]


Int64 = Int(-v.MAX_ROW_ID - 1, v.MAX_ROW_ID)  # what the database can hold; the meaning is checked later
Ref = _text(v.MAX_REF)                      # a name or id something is looked up by
Name = _text(v.MAX_NAME)                    # a new object's name (the services check its characters)
Text = _text(v.MAX_TEXT, one_line=False)    # descriptions
PathText = _text(vv.MAX_PATH)               # a file on the hosts (the services check where)
Json = dict[str, Any]                       # checked by ferry.engine.validation.check_json


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

    mode: Ref = Field(description="AUTO | AUTO_PARALLEL | DISABLED | CUSTOM")
    connections: Int(0, 2 ** 31) | None = Field(None, description="with CUSTOM: 2..255")

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

    mode: Ref = Field(description="AUTO | HYPERVISOR_DEFAULT | CUSTOM")
    custom_mbps: Int(1, v.MAX_BANDWIDTH_MBPS) | None = Field(None, description="with CUSTOM: the bandwidth in Mbps")

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
    description: Text | None = None
    policy: Ref | None = Field(None, description="policy name or id")
    parallel: ParallelBody | None = None
    encrypted: bool | None = None
    bandwidth: BandwidthBody | None = None
    auto_converge: bool | None = None
    compressed: bool | None = None
    resilience: Ref | None = Field(None, description="MIGRATE | MIGRATE_HIGHLY_AVAILABLE | DO_NOT_MIGRATE")
    parallel_supported: bool | None = Field(None, description="oVirt's cluster-level gate for parallel "
                                                              "(and so zero-copy) migrations")

    def changes(self) -> dict[str, Any]:
        return _cluster_changes(self.given())


class ClusterCreate(ClusterUpdate):
    name: Name

    def changes(self) -> dict[str, Any]:
        given = self.given()
        given.pop("name", None)
        return _cluster_changes(given)


class HostUpdate(Body):
    cluster: Ref | None = None
    address: Ref | None = None
    agent_url: _text(v.MAX_URL) | None = None
    migration_address: Ref | None = None
    migration_network_up: bool | None = None
    link_speed_mbps: Int(1, v.MAX_LINK_SPEED_MBPS) | None = None
    status: Ref | None = Field(None, description="UNKNOWN | UP | DOWN | MAINTENANCE")
    capabilities: Json | None = Field(None, description="the agent's last Host.getCapabilities")

    def changes(self) -> dict[str, Any]:
        given = self.given()
        for key in ("cluster", "address", "agent_url", "status", "migration_network_up"):
            if key in given and given[key] is None:
                raise InvalidInput(key, "cannot be null")
        return given


class HostCreate(HostUpdate):
    name: Name
    cluster: Ref
    address: Ref = Field(description="the agent's (management) address")

    def changes(self) -> dict[str, Any]:
        given = super().changes()
        for key in ("name", "cluster", "address"):
            given.pop(key, None)
        return given


class OverridesBody(Body):
    """Per-VM overrides; null = inherit the cluster's. In a PATCH only the keys sent change."""

    policy: Ref | None = None
    parallel: ParallelBody | None = None
    encrypted: bool | None = None
    auto_converge: bool | None = None
    compressed: bool | None = None
    downtime_ms: Int64 | None = Field(None, description=f"1..{MAX_ACTION_DOWNTIME_MS} (checked by the engine, field downtime_ms)")

    def changes(self) -> dict[str, Any]:
        given = self.given()
        if isinstance(given.get("parallel"), ParallelBody):
            given["parallel"] = given["parallel"].to_setting()
        return given


MemoryMib = Int(vv.MIN_MEMORY_MIB, vv.MAX_MEMORY_MIB)
Vcpus = Int(1, vv.MAX_VCPUS)
HardLimitKib = Int(1, vv.MAX_HARD_LIMIT_KIB)
Cmdline = _text(vv.MAX_CMDLINE)


class WorkloadBody(Body):
    """A lab workload guest's figures (ferry.lab.guest.Workload); fill at most the VM's memory."""

    fill_mib: Int(1, vv.MAX_MEMORY_MIB) | None = None
    dirty_mib_s: Int(0, vv.MAX_DIRTY_MIB_S) | None = None
    spot_pages: Int(0, vv.MAX_SPOT_PAGES) | None = None


def _workload(body: WorkloadBody | None) -> dict[str, Any] | None:
    return None if body is None else body.model_dump(exclude_unset=True)


class VmUpdate(Body):
    memory_mib: MemoryMib | None = None
    vcpus: Vcpus | None = None
    kernel: PathText | None = Field(None, description="a file name or a path under the images directories")
    initrd: PathText | None = None
    cmdline: Cmdline | None = None
    accel: Ref | None = None
    memtune_hard_limit_kib: HardLimitKib | None = None
    console_log: PathText | None = Field(None, description="a file name or a path under the console log directory")
    emulator: PathText | None = Field(None, description="one of the engine's allowed emulators")
    machine: Ref | None = None
    cluster: Ref | None = None
    host: Ref | None = Field(None, description="the host it runs on; null = not running")
    status: Ref | None = Field(None, description="DOWN | UP | PAUSED | MIGRATING")
    workload: WorkloadBody | None = None
    overrides: OverridesBody | None = None

    _NULLABLE = ("initrd", "memtune_hard_limit_kib", "console_log", "host", "workload", "status", "overrides")

    def split(self) -> tuple[dict[str, Any], dict[str, Any] | None]:
        given = self.given()
        for key, value in given.items():
            if value is None and key not in self._NULLABLE:
                raise InvalidInput(key, "cannot be null")
        overrides = given.pop("overrides", None)
        if "workload" in given:
            given["workload"] = _workload(given["workload"])
        if given.get("status", "") is None:
            given.pop("status")
        return given, (overrides.changes() if overrides is not None else None)


class VmCreate(Body):
    name: Name
    cluster: Ref
    memory_mib: MemoryMib
    vcpus: Vcpus
    kernel: PathText = Field(description="a file name or a path under the images directories")
    initrd: PathText | None = None
    cmdline: Cmdline = ""
    uuid: _text(36) | None = None
    accel: Ref | None = None
    memtune_hard_limit_kib: HardLimitKib | None = None
    console_log: PathText | None = Field(None, description="a file name or a path under the console log directory")
    emulator: PathText | None = Field(None, description="one of the engine's allowed emulators")
    machine: Ref | None = None
    host: Ref | None = None
    status: Ref | None = None
    workload: WorkloadBody | None = None
    overrides: OverridesBody | None = None

    def workload_figures(self) -> dict[str, Any] | None:
        return _workload(self.workload)

    def spec(self) -> dict[str, Any]:
        keys = ("name", "memory_mib", "vcpus", "kernel", "initrd", "cmdline", "uuid", "accel",
                "memtune_hard_limit_kib", "console_log", "emulator", "machine")
        return {k: getattr(self, k) for k in keys if k in self.model_fields_set and getattr(self, k) is not None}


class ActionBody(Body):
    name: Ref = Field(description="setDowntime | postcopy | abort")
    params: list[Int(0, MAX_ACTION_DOWNTIME_MS) | Ref] = Field(default_factory=list, max_length=8,
                                                              description="setDowntime: [milliseconds]")

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value


class StallingBody(Body):
    limit: Int(-1, MAX_STALLING_LIMIT)
    action: ActionBody


class PolicyBody(Body):
    """A custom migration policy (the form GET returns; builtin/legacy must be false)."""

    id: Ref | None = None
    name: Name
    description: Text | None = None
    max_migrations: Int(0, MAX_MIGRATIONS_LIMIT) | None = None
    auto_converge: bool | None = None
    compression: bool | None = None
    guest_events: bool | None = None
    zerocopy: bool | None = None
    init: list[ActionBody] | None = Field(None, max_length=64)
    stalling: list[StallingBody] | None = Field(None, max_length=64)
    last_items: list[ActionBody] | None = Field(None, max_length=64)
    builtin: bool | None = None
    legacy: bool | None = None

    def data(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True, exclude_none=True)


class PlanRequest(Body):
    to: Ref | None = Field(None, description="destination host; null = the one the engine would pick")
    policy: Ref | None = Field(None, description="policy name or id; null = the VM's effective policy")
