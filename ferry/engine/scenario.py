"""Planner scenarios: a YAML/JSON description of cluster, VM, policy and hosts -> planner inputs.

`ferry plan --scenario FILE` runs the planner on one of these with no engine and no agents, so
an admin can ask "what would happen if..." and tests can pin whole situations. The format is
documented in docs/planner-scenarios.md. Pure: takes text or plain data; errors are
InvalidInput naming the field (e.g. `cluster.parallel`, `source.zerocopy`).
"""
from __future__ import annotations

from dataclasses import dataclass

import yaml

from ferry.common.errors import InvalidInput, NotFound
from ferry.engine.forecasting import Measured, forecast_wire, link_mibs, plan_forecast
from ferry.engine.options import (
    BandwidthMode,
    BandwidthSetting,
    ClusterMigrationOptions,
    HostMigrationInfo,
    ParallelMode,
    ParallelSetting,
    VmMigrationOverrides,
    ZeroCopySupport,
    short_form,
)
from ferry.engine.planner import MigrationPlan, effective_policy_id, plan_migration
from ferry.engine.policies import (
    BUILTIN_POLICIES,
    MINIMAL_DOWNTIME_ID,
    MigrationPolicy,
    check_policy_allowed,
    find_policy,
    policy_from_dict,
)
from ferry.engine.recommend import Candidate, recommendation

TOP_KEYS = {"description", "cluster", "vm", "source", "destination", "policies"}
CLUSTER_KEYS = {"policy", "parallel", "encrypted", "bandwidth", "auto_converge", "compressed",
                "parallel_supported"}
VM_KEYS = {"name", "vcpus", "paused", "policy", "parallel", "encrypted", "auto_converge",
           "compressed", "downtime_ms", "memory_mib", "touched_mib", "dirty_rate_mibs"}
HOST_KEYS = {"name", "address", "migration_address", "migration_network_up", "link_speed_mbps", "zerocopy",
             "measured_mibs"}
DEFAULT_POLICY_ID = MINIMAL_DOWNTIME_ID   # oVirt's default cluster policy


@dataclass(frozen=True)
class Workload:
    """What `--forecast` needs beyond the plan (MiB, MiB/s); None = not given."""

    memory_mib: float | None = None
    touched_mib: float | None = None
    dirty_rate_mibs: float | None = None
    measured_mibs: float | None = None      # the lower of source/destination measured_mibs


@dataclass(frozen=True)
class Scenario:
    cluster: ClusterMigrationOptions
    vm: VmMigrationOverrides
    vm_name: str
    vcpus: int
    paused: bool
    source: HostMigrationInfo
    destination: HostMigrationInfo
    policies: tuple[MigrationPolicy, ...] = ()   # the scenario's custom policies
    description: str = ""
    workload: Workload = Workload()

    def policy(self, requested: str | None = None) -> MigrationPolicy:
        """The policy to plan with: `requested` (id or name) if given, else the effective one."""
        if requested:
            try:
                return find_policy(requested, self.policies, field="policy")
            except NotFound:
                raise InvalidInput("policy", _unknown_policy(requested, self.policies)) from None
        policy_id, origin = effective_policy_id(self.cluster, self.vm)
        return find_policy(policy_id, self.policies, field="vm.policy" if origin == "VM override" else "cluster.policy")

    def plan(self, policy: str | None = None) -> MigrationPlan:
        return plan_migration(self.cluster, self.vm, self.policy(policy), self.source, self.destination,
                              vcpus=self.vcpus, paused=self.paused, vm_name=self.vm_name,
                              cluster_policy=find_policy(self.cluster.policy_id, self.policies))

    def measured(self) -> Measured:
        """The forecast's figures: vm.memory_mib is required, touched defaults to all of
        memory, the dirty rate to 0; the bandwidth is the plan's cap, the hosts' measured_mibs
        and their link speeds (the lowest known wins)."""
        w = self.workload
        if w.memory_mib is None:
            raise InvalidInput("vm.memory_mib", "is required for a forecast (the guest's memory in MiB)")
        if w.touched_mib is not None and w.touched_mib > w.memory_mib:
            raise InvalidInput("vm.touched_mib", f"cannot exceed vm.memory_mib ({w.memory_mib:g}), got {w.touched_mib:g}")
        return Measured(memory_mib=w.memory_mib, touched_mib=w.touched_mib, dirty_rate_mibs=w.dirty_rate_mibs or 0.0,
                        dirty_reason="given in the scenario", measured_bandwidth_mibs=w.measured_mibs,
                        bandwidth_samples=0 if w.measured_mibs is None else 1,
                        link_mibs=link_mibs(self.source.link_speed_mbps, self.destination.link_speed_mbps))

    def recommend(self) -> dict:
        """Every policy (built-in and the scenario's) forecast on the scenario's figures, ranked."""
        measured = self.measured()
        candidates = []
        for p in (*BUILTIN_POLICIES, *self.policies):
            try:
                check_policy_allowed(p, self.cluster.parallel_supported)
            except InvalidInput as exc:
                candidates.append(Candidate(p.id, p.name, None, f"cannot be used here: {exc.reason}"))
                continue
            plan = self.plan(p.id)
            candidates.append(Candidate(p.id, p.name, forecast_wire(plan_forecast(plan, measured), measured)))
        return {"vm": self.vm_name, "source": self.source.name, "destination": self.destination.name,
                **recommendation(candidates)}

    def forecast(self, policy: str | None = None) -> dict:
        """The plan's dict with its `forecast` object (ferry.engine.forecasting)."""
        plan = self.plan(policy)
        measured = self.measured()
        body = plan.to_dict()
        body["forecast"] = forecast_wire(plan_forecast(plan, measured), measured)
        return body


def _unknown_policy(key: str, custom) -> str:
    names = ", ".join(repr(p.name) for p in (*BUILTIN_POLICIES, *custom))
    return f"unknown policy {key!r} (known: {names}; or a policy id)"


def _mapping(value, field: str, keys: set[str], required: bool = True) -> dict:
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(field, f"must be a mapping, got {_show(value)}")
    for key in value:
        if key not in keys:
            raise InvalidInput(f"{field}.{key}" if field else str(key),
                               f"unknown key (known: {', '.join(sorted(keys))})")
    return value


def _show(value) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {value!r}"


def _bool(data: dict, key: str, field: str, default: bool | None) -> bool | None:
    """The key's value; left out or null means the default."""
    value = data.get(key)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    raise InvalidInput(f"{field}.{key}", f"must be true or false, got {value!r}")


def _int(data: dict, key: str, field: str, *, minimum: int, required: bool = False) -> int | None:
    value = data.get(key)
    if value is None:
        if required:
            raise InvalidInput(f"{field}.{key}", "is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{field}.{key}", f"must be an integer, got {value!r}")
    if value < minimum:
        raise InvalidInput(f"{field}.{key}", f"must be {minimum} or more, got {value}")
    return value


def _size(data: dict, key: str, field: str, *, zero_ok: bool) -> float | None:
    """A size or rate (MiB, MiB/s): a number, > 0 (or >= 0 with zero_ok); null = not given."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value or value in (
            float("inf"), float("-inf")):
        raise InvalidInput(f"{field}.{key}", f"must be a number, got {value!r}")
    if value < 0 or (value == 0 and not zero_ok):
        raise InvalidInput(f"{field}.{key}", f"must be {'0 or more' if zero_ok else 'more than 0'}, got {value!r}")
    return float(value)


def _prefixed(field: str, exc: InvalidInput) -> InvalidInput:
    """'bandwidth.custom_mbps' raised by a value type -> 'cluster.bandwidth.custom_mbps'."""
    inner = exc.field.split(".", 1)[1] if "." in exc.field else exc.field
    return InvalidInput(f"{field}.{inner}", exc.reason)


def parse_parallel(value, field: str) -> ParallelSetting | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidInput(field, f"must be AUTO, AUTO_PARALLEL, DISABLED or a connection count, got {value!r}")
    try:
        return ParallelSetting.parse(str(value), field)
    except InvalidInput as exc:
        raise InvalidInput(field, exc.reason) from None


def parse_bandwidth(value, field: str) -> BandwidthSetting:
    """'AUTO', 'HYPERVISOR_DEFAULT', 'CUSTOM:10000', 10000 (= CUSTOM Mbps) or {mode, custom_mbps}."""
    if value is None:
        return BandwidthSetting(BandwidthMode.AUTO)
    mode, mbps = value, None
    if isinstance(value, dict):
        _mapping(value, field, {"mode", "custom_mbps"})
        mode, mbps = value.get("mode", "CUSTOM" if "custom_mbps" in value else None), value.get("custom_mbps")
    elif isinstance(value, int) and not isinstance(value, bool):
        mode, mbps = "CUSTOM", value
    elif isinstance(value, str) and ":" in value:
        mode, mbps = short_form(value)
    if not isinstance(mode, str):
        raise InvalidInput(field, f"must be AUTO, HYPERVISOR_DEFAULT or CUSTOM:<Mbps>, got {value!r}")
    try:
        parsed_mode = BandwidthMode(mode.strip().upper().replace("-", "_"))
    except ValueError:
        raise InvalidInput(field, f"unknown bandwidth mode {mode!r} (AUTO, HYPERVISOR_DEFAULT or CUSTOM:<Mbps>)") from None
    if parsed_mode is BandwidthMode.CUSTOM and mbps is None:
        raise InvalidInput(f"{field}.custom_mbps", "CUSTOM bandwidth needs a value in Mbps, e.g. CUSTOM:10000")
    try:
        return BandwidthSetting(parsed_mode, mbps)
    except InvalidInput as exc:
        raise _prefixed(field, exc) from None


def parse_zerocopy(value, field: str) -> ZeroCopySupport:
    """true/yes -> YES, false/no -> NO, null/missing/'unknown' -> UNKNOWN (an older agent)."""
    if value is None:
        return ZeroCopySupport.UNKNOWN
    if isinstance(value, bool):
        return ZeroCopySupport.YES if value else ZeroCopySupport.NO
    if isinstance(value, str):
        text = value.strip().upper()
        aliases = {"TRUE": "YES", "FALSE": "NO", "SUPPORTED": "YES", "UNSUPPORTED": "NO"}
        try:
            return ZeroCopySupport(aliases.get(text, text))
        except ValueError:
            pass
    raise InvalidInput(field, f"must be yes, no or unknown, got {value!r}")


def parse_host(value, field: str) -> HostMigrationInfo:
    data = _mapping(value, field, HOST_KEYS)
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"{field}.name", f"a host needs a name, got {name!r}")
    address = data.get("address")
    if address is None:
        address = name
    if not isinstance(address, str) or not address.strip():
        raise InvalidInput(f"{field}.address", f"must be a host name or address, got {address!r}")
    mig_address = data.get("migration_address")
    if mig_address is not None and (not isinstance(mig_address, str) or not mig_address.strip()):
        raise InvalidInput(f"{field}.migration_address", f"must be an address, got {mig_address!r}")
    network_up = _bool(data, "migration_network_up", field, default=mig_address is not None)
    return HostMigrationInfo(
        name=name.strip(), address=address.strip(),
        migration_address=mig_address.strip() if mig_address else None,
        migration_network_up=bool(network_up),
        link_speed_mbps=_int(data, "link_speed_mbps", field, minimum=1),
        zerocopy=parse_zerocopy(data.get("zerocopy"), f"{field}.zerocopy"),
    )


def _policy_id(value, field: str, custom) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be a policy name or id, got {value!r}")
    try:
        return find_policy(value, custom, field=field).id
    except NotFound:
        raise InvalidInput(field, _unknown_policy(value, custom)) from None


def parse_scenario(data) -> Scenario:
    """A Scenario from plain data (a parsed YAML/JSON document)."""
    top = _mapping(data, "", TOP_KEYS)
    description = top.get("description") or ""
    if not isinstance(description, str):
        raise InvalidInput("description", f"must be text, got {description!r}")

    raw_policies = top.get("policies") or []
    if not isinstance(raw_policies, list):
        raise InvalidInput("policies", f"must be a list of custom policies, got {_show(raw_policies)}")
    custom: list[MigrationPolicy] = []
    for i, raw in enumerate(raw_policies):
        try:
            custom.append(policy_from_dict(raw, existing=custom))
        except InvalidInput as exc:
            raise InvalidInput(f"policies[{i}].{exc.field}" if exc.field != "policy" else f"policies[{i}]",
                               exc.reason) from None

    c = _mapping(top.get("cluster"), "cluster", CLUSTER_KEYS, required=False)
    cluster = ClusterMigrationOptions(
        policy_id=_policy_id(c.get("policy"), "cluster.policy", custom) or DEFAULT_POLICY_ID,
        parallel=parse_parallel(c.get("parallel"), "cluster.parallel") or ParallelSetting(ParallelMode.DISABLED),
        encrypted=bool(_bool(c, "encrypted", "cluster", False)),
        bandwidth=parse_bandwidth(c.get("bandwidth"), "cluster.bandwidth"),
        auto_converge=bool(_bool(c, "auto_converge", "cluster", False)),
        compressed=bool(_bool(c, "compressed", "cluster", False)),
        parallel_supported=bool(_bool(c, "parallel_supported", "cluster", True)),
    )

    v = _mapping(top.get("vm"), "vm", VM_KEYS)
    vm_name = v.get("name")
    if vm_name is None:
        vm_name = "vm"
    if not isinstance(vm_name, str) or not vm_name.strip():
        raise InvalidInput("vm.name", f"must be a name, got {vm_name!r}")
    vm = VmMigrationOverrides(
        policy_id=_policy_id(v.get("policy"), "vm.policy", custom),
        parallel=parse_parallel(v.get("parallel"), "vm.parallel"),
        encrypted=_bool(v, "encrypted", "vm", None),
        auto_converge=_bool(v, "auto_converge", "vm", None),
        compressed=_bool(v, "compressed", "vm", None),
        downtime_ms=_int(v, "downtime_ms", "vm", minimum=1),
    )
    vcpus = _int(v, "vcpus", "vm", minimum=1, required=True)
    paused = bool(_bool(v, "paused", "vm", False))

    if "source" not in top:
        raise InvalidInput("source", "is required (the host the VM runs on)")
    if "destination" not in top:
        raise InvalidInput("destination", "is required (the host to migrate to)")
    source = parse_host(top["source"], "source")
    destination = parse_host(top["destination"], "destination")
    if source.name == destination.name:
        raise InvalidInput("destination.name", f"must differ from the source host ({source.name!r})")
    measured = [m for m in (_size(top["source"], "measured_mibs", "source", zero_ok=False),
                            _size(top["destination"], "measured_mibs", "destination", zero_ok=False))
                if m is not None]
    workload = Workload(memory_mib=_size(v, "memory_mib", "vm", zero_ok=False),
                        touched_mib=_size(v, "touched_mib", "vm", zero_ok=True),
                        dirty_rate_mibs=_size(v, "dirty_rate_mibs", "vm", zero_ok=True),
                        measured_mibs=min(measured) if measured else None)
    return Scenario(cluster, vm, vm_name.strip(), vcpus, paused, source, destination, tuple(custom),
                    description.strip(), workload)


def load_scenario_text(text: str) -> Scenario:
    """A Scenario from YAML or JSON text (JSON is read as YAML)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InvalidInput("scenario", f"not valid YAML or JSON{where}: {problem}") from None
    if data is None:
        raise InvalidInput("scenario", "the file is empty")
    if not isinstance(data, dict):
        raise InvalidInput("scenario", f"must be a mapping with cluster, vm, source and destination, got {_show(data)}")
    return parse_scenario(data)
