"""The clusters repository: a cluster's migration options (oVirt's defaults for new ones)."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ferry.common.errors import Conflict, InvalidInput
from ferry.engine.db import models as m
from ferry.engine.db.records import ClusterRecord
from ferry.engine.db.repos.base import UNSET, Unset, find_row, given, name_taken, now, utc
from ferry.engine.db.repos.policies import PolicyRepository
from ferry.engine.options import (
    BandwidthMode,
    BandwidthSetting,
    ClusterMigrationOptions,
    ParallelMode,
    ParallelSetting,
    ResiliencePolicy,
)
from ferry.engine.policies import MINIMAL_DOWNTIME_ID
from ferry.engine.validation import (
    check_bandwidth,
    check_bool,
    check_enum,
    check_name,
    check_parallel,
    check_string,
    check_zerocopy_gate,
)

DEFAULT_POLICY_ID = MINIMAL_DOWNTIME_ID  # oVirt's default for new clusters


class ClusterRepository:
    def __init__(self, session: Session, policies: PolicyRepository):
        self.session = session
        self.policies = policies

    def list(self) -> list[ClusterRecord]:
        return [_record(r) for r in self.session.scalars(select(m.Cluster).order_by(m.Cluster.name))]

    def get(self, name: str) -> ClusterRecord:
        return _record(find_row(self.session, m.Cluster, name))

    def create(self, name: str, *, description: str | Unset = UNSET, policy: str | Unset = UNSET,
               parallel: ParallelSetting | str | Unset = UNSET, encrypted: bool | Unset = UNSET,
               bandwidth: BandwidthSetting | Unset = UNSET, auto_converge: bool | Unset = UNSET,
               compressed: bool | Unset = UNSET, resilience: ResiliencePolicy | str | Unset = UNSET,
               parallel_supported: bool | Unset = UNSET) -> ClusterRecord:
        """A new cluster; options not given take oVirt's defaults (policy Minimal downtime,
        parallel DISABLED, bandwidth AUTO, parallel migrations supported)."""
        check_name("name", name)
        if name_taken(self.session, m.Cluster, name):
            raise Conflict(f"cluster {name!r} already exists")
        changes = given(description=description, policy=policy, parallel=parallel, encrypted=encrypted,
                        bandwidth=bandwidth, auto_converge=auto_converge, compressed=compressed,
                        resilience=resilience, parallel_supported=parallel_supported)
        options = ClusterMigrationOptions(policy_id=DEFAULT_POLICY_ID)
        options, text = self._apply(name, options, "", changes)
        row = m.Cluster(name=name, created_at=now())
        _fill(row, options, text)
        self.session.add(row)
        self.session.flush()
        return _record(row)

    def update(self, name: str, *, description: str | Unset = UNSET, policy: str | Unset = UNSET,
               parallel: ParallelSetting | str | Unset = UNSET, encrypted: bool | Unset = UNSET,
               bandwidth: BandwidthSetting | Unset = UNSET, auto_converge: bool | Unset = UNSET,
               compressed: bool | Unset = UNSET, resilience: ResiliencePolicy | str | Unset = UNSET,
               parallel_supported: bool | Unset = UNSET) -> ClusterRecord:
        """Change the options given; the others stay."""
        changes = given(description=description, policy=policy, parallel=parallel, encrypted=encrypted,
                        bandwidth=bandwidth, auto_converge=auto_converge, compressed=compressed,
                        resilience=resilience, parallel_supported=parallel_supported)
        row = find_row(self.session, m.Cluster, name)
        current = _record(row)
        options, text = self._apply(name, current.options, current.description, changes)
        if not options.parallel_supported and current.options.parallel_supported:
            for vm in row.vms:
                if vm.policy_id and self.policies.get(vm.policy_id).zerocopy:
                    raise InvalidInput(
                        "parallel_supported",
                        f"VM {vm.name!r} uses zero-copy policy {self.policies.name_of(vm.policy_id)!r}, which "
                        "needs parallel migrations; change its policy before turning parallel support off")
        _fill(row, options, text)
        self.session.flush()
        return _record(row)

    def delete(self, name: str) -> None:
        row = find_row(self.session, m.Cluster, name)
        if row.hosts or row.vms:
            raise Conflict(f"cluster {name!r} still has {len(row.hosts)} host(s) and {len(row.vms)} VM(s); "
                           "remove them first")
        self.session.delete(row)
        self.session.flush()

    def _apply(self, name: str, options: ClusterMigrationOptions, description: str,
               changes: dict[str, Any]) -> tuple[ClusterMigrationOptions, str]:
        new: dict[str, Any] = {}
        policy = None
        for key, value in changes.items():
            if key == "description":
                description = check_string("description", value)
            elif key == "policy":
                policy = self.policies.get(value)
                new["policy_id"] = policy.id
            elif key == "parallel":
                new["parallel"] = check_parallel("parallel", value)
            elif key == "bandwidth":
                new["bandwidth"] = check_bandwidth(value)
            elif key == "resilience":
                new["resilience"] = check_enum(ResiliencePolicy, "resilience", value)
            else:  # encrypted, auto_converge, compressed, parallel_supported
                new[key] = check_bool(key, value)
        options = replace(options, **new)
        policy = policy or self.policies.get(options.policy_id)
        field = "policy" if "policy" in changes else "parallel_supported"
        check_zerocopy_gate(field, policy, name, options.parallel_supported)
        return options, description


def _fill(row: m.Cluster, o: ClusterMigrationOptions, description: str) -> None:
    row.description = description
    row.policy_id = o.policy_id
    row.parallel_mode = o.parallel.mode.value
    row.parallel_connections = o.parallel.connections
    row.encrypted = o.encrypted
    row.bandwidth_mode = o.bandwidth.mode.value
    row.bandwidth_custom_mbps = o.bandwidth.custom_mbps
    row.auto_converge = o.auto_converge
    row.compressed = o.compressed
    row.resilience = o.resilience.value
    row.parallel_supported = o.parallel_supported


def _record(row: m.Cluster) -> ClusterRecord:
    options = ClusterMigrationOptions(
        policy_id=row.policy_id,
        parallel=ParallelSetting(ParallelMode(row.parallel_mode), row.parallel_connections),
        encrypted=row.encrypted,
        bandwidth=BandwidthSetting(BandwidthMode(row.bandwidth_mode), row.bandwidth_custom_mbps),
        auto_converge=row.auto_converge,
        compressed=row.compressed,
        resilience=ResiliencePolicy(row.resilience),
        parallel_supported=row.parallel_supported,
    )
    return ClusterRecord(row.id, row.name, options, row.description, utc(row.created_at))
