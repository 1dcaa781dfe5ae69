"""The clusters repository: a cluster's migration options (oVirt's defaults for new ones)."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ferry.common.errors import Conflict
from ferry.engine.db import models as m
from ferry.engine.db.records import ClusterRecord
from ferry.engine.db.repos.base import UNSET, Unset, as_enum, find_row, given, name_taken, now, utc
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

DEFAULT_POLICY_ID = MINIMAL_DOWNTIME_ID  # oVirt's default for new clusters


class ClusterRepository:
    def __init__(self, session: Session, policies: PolicyRepository):
        self.session = session
        self.policies = policies

    def list(self) -> list[ClusterRecord]:
        return [_record(r) for r in self.session.scalars(select(m.Cluster).order_by(m.Cluster.name))]

    def get(self, name: str, field: str | None = None) -> ClusterRecord:
        """The cluster; unknown: NotFound, or bad input in `field` when it was referred to."""
        return _record(find_row(self.session, m.Cluster, name, field))

    def ensure_new(self, name: str) -> None:
        if name_taken(self.session, m.Cluster, name):
            raise Conflict(f"cluster {name!r} already exists")

    def create(self, name: str, *, description: str | Unset = UNSET, policy: str | Unset = UNSET,
               parallel: ParallelSetting | Unset = UNSET, encrypted: bool | Unset = UNSET,
               bandwidth: BandwidthSetting | Unset = UNSET, auto_converge: bool | Unset = UNSET,
               compressed: bool | Unset = UNSET, resilience: ResiliencePolicy | str | Unset = UNSET,
               parallel_supported: bool | Unset = UNSET) -> ClusterRecord:
        """A new cluster; options not given take oVirt's defaults (policy Minimal downtime,
        parallel DISABLED, bandwidth AUTO, parallel migrations supported). `policy` is a
        policy's id or name; the values are checked by the use case (services.inventory)."""
        self.ensure_new(name)
        changes = given(description=description, policy=policy, parallel=parallel, encrypted=encrypted,
                        bandwidth=bandwidth, auto_converge=auto_converge, compressed=compressed,
                        resilience=resilience, parallel_supported=parallel_supported)
        options, text = self._apply(ClusterMigrationOptions(policy_id=DEFAULT_POLICY_ID), "", changes)
        row = m.Cluster(name=name, created_at=now())
        _fill(row, options, text)
        self.session.add(row)
        self.session.flush()
        return _record(row)

    def update(self, name: str, *, description: str | Unset = UNSET, policy: str | Unset = UNSET,
               parallel: ParallelSetting | Unset = UNSET, encrypted: bool | Unset = UNSET,
               bandwidth: BandwidthSetting | Unset = UNSET, auto_converge: bool | Unset = UNSET,
               compressed: bool | Unset = UNSET, resilience: ResiliencePolicy | str | Unset = UNSET,
               parallel_supported: bool | Unset = UNSET) -> ClusterRecord:
        """Change the options given; the others stay."""
        changes = given(description=description, policy=policy, parallel=parallel, encrypted=encrypted,
                        bandwidth=bandwidth, auto_converge=auto_converge, compressed=compressed,
                        resilience=resilience, parallel_supported=parallel_supported)
        row = find_row(self.session, m.Cluster, name)
        current = _record(row)
        options, text = self._apply(current.options, current.description, changes)
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

    def _apply(self, options: ClusterMigrationOptions, description: str,
               changes: dict[str, Any]) -> tuple[ClusterMigrationOptions, str]:
        new: dict[str, Any] = {}
        for key, value in changes.items():
            if key == "description":
                description = value
            elif key == "policy":
                new["policy_id"] = self.policies.get(value).id
            elif key == "resilience":
                new["resilience"] = as_enum(ResiliencePolicy, value)
            else:  # parallel, bandwidth, encrypted, auto_converge, compressed, parallel_supported
                new[key] = value
        return replace(options, **new), description


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
