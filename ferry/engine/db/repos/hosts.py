"""The hosts repository: where each host's agent is, its migration network, what it reported."""
from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, joinedload

from ferry.common.errors import Conflict
from ferry.engine.db import models as m
from ferry.engine.db.records import HostRecord, HostSchedule, HostStatus
from ferry.engine.db.repos.base import UNSET, Unset, as_enum, find_row, name_taken, now, utc

AGENT_PORT = 54321


def default_agent_url(address: str) -> str:
    """Where a host's agent listens when no URL is given: its address, the agent port, TLS."""
    host = "[" + address + "]" if ":" in address else address
    return f"https://{host}:{AGENT_PORT}/"


class HostRepository:
    def __init__(self, session: Session):
        self.session = session

    def list(self, cluster: str | None = None) -> list[HostRecord]:
        q = select(m.Host).options(joinedload(m.Host.cluster)).order_by(m.Host.name)  # one query, not one per host
        if cluster is not None:
            q = q.where(m.Host.cluster_id == find_row(self.session, m.Cluster, cluster, "cluster").id)
        return [_record(r) for r in self.session.scalars(q)]

    def schedule(self) -> list[HostSchedule]:
        """Every host's name, agent URL, status and whether it was ever refreshed: one narrow query
        (the monitor's loop runs it every second; decoding 2,000 capabilities documents was not cheap)."""
        q = select(m.Host.name, m.Host.agent_url, m.Host.status, m.Host.capabilities_at.is_not(None)) \
            .order_by(m.Host.name)
        return [HostSchedule(name, url, HostStatus(status), bool(seen))
                for name, url, status, seen in self.session.execute(q)]

    def states(self, names: list[str]) -> dict[str, tuple[int, HostStatus]]:
        """Each named host's id and status, in one narrow query (unknown names are absent)."""
        q = select(m.Host.name, m.Host.id, m.Host.status).where(m.Host.name.in_(names))
        return {name: (row_id, HostStatus(status)) for name, row_id, status in self.session.execute(q)}

    def record_answers(self, answered: list[tuple[int, HostStatus, HostStatus, dict[str, Any]]],
                       unreachable: list[tuple[int, HostStatus, HostStatus]]) -> None:
        """The host monitor's results for many hosts at once (by id), one statement each kind:
        answered hosts get their capabilities (and capabilities_at now); a host's status changes
        from the one read (`was`) to the new one (`to`) only if it is still the one read.

        Why compare-and-set: the statuses were read before the agents' answers were recorded, and
        a drain that ended (MAINTENANCE) or an admin's activate (UP) may have committed since;
        writing the old read back undid them (a host left PREPARING_FOR_MAINTENANCE with its
        drain DONE: CI, stop 22). Neither SQLite's nor PostgreSQL's default isolation stops that."""
        at = now()
        if answered:
            self.session.execute(update(m.Host), [{"id": i, "capabilities": c, "capabilities_at": at}
                                                  for i, _was, _to, c in answered])
        changed = [(i, was, to) for i, was, to, _c in answered] + list(unreachable)
        changed = [{"b_id": i, "b_was": was.value, "b_to": to.value} for i, was, to in changed if was is not to]
        if changed:
            table = m.Host.__table__
            cas = (update(table).where(table.c.id == bindparam("b_id"), table.c.status == bindparam("b_was"))
                   .values(status=bindparam("b_to")))
            self.session.connection().execute(cas, changed)
        self.session.expire_all()   # rows loaded before in this session now read the new values

    def get(self, name: str, field: str | None = None) -> HostRecord:
        """The host; unknown: NotFound, or bad input in `field` when it was referred to.
        Its cluster's name comes in the same query (a REST read of a host was two queries)."""
        return _record(find_row(self.session, m.Host, name, field,
                                options=(joinedload(m.Host.cluster).load_only(m.Cluster.name),)))

    def ensure_new(self, name: str) -> None:
        if name_taken(self.session, m.Host, name):
            raise Conflict(f"host {name!r} already exists")

    def add(self, name: str, *, cluster: str, address: str, agent_url: str | None = None,
            migration_address: str | None = None, migration_network_up: bool | None = None,
            link_speed_mbps: int | None = None, status: HostStatus | str = HostStatus.UNKNOWN,
            capabilities: dict[str, Any] | None = None) -> HostRecord:
        """A new host (its values checked by services.inventory); the agent URL defaults to
        the host's address on the agent port."""
        self.ensure_new(name)
        row = m.Host(
            name=name,
            cluster_id=find_row(self.session, m.Cluster, cluster, "cluster").id,
            address=address,
            agent_url=agent_url or default_agent_url(address),
            migration_address=migration_address,
            link_speed_mbps=link_speed_mbps,
            status=as_enum(HostStatus, status).value,
            created_at=now(),
        )
        # A configured migration network is taken as up until the agent says otherwise.
        row.migration_network_up = (row.migration_address is not None) if migration_network_up is None \
            else bool(migration_network_up)
        if capabilities is not None:
            _set_capabilities(row, capabilities)
        self.session.add(row)
        self.session.flush()
        return _record(row)

    def update(self, name: str, *, cluster: str | Unset = UNSET, address: str | Unset = UNSET,
               agent_url: str | Unset = UNSET, migration_address: str | None | Unset = UNSET,
               migration_network_up: bool | Unset = UNSET, link_speed_mbps: int | None | Unset = UNSET,
               status: HostStatus | str | Unset = UNSET,
               capabilities: dict[str, Any] | None | Unset = UNSET) -> HostRecord:
        """Change what is given; a new migration address (and no word on its network) is taken as up."""
        row = find_row(self.session, m.Host, name)
        if cluster is not UNSET:
            row.cluster = find_row(self.session, m.Cluster, cluster, "cluster")
        if address is not UNSET:
            row.address = address
        if agent_url is not UNSET:
            row.agent_url = agent_url
        if migration_address is not UNSET:
            row.migration_address = migration_address
            if migration_network_up is UNSET:
                row.migration_network_up = row.migration_address is not None
        if migration_network_up is not UNSET:
            row.migration_network_up = bool(migration_network_up)
        if link_speed_mbps is not UNSET:
            row.link_speed_mbps = link_speed_mbps
        if status is not UNSET:
            row.status = as_enum(HostStatus, status).value
        if capabilities is not UNSET:
            _set_capabilities(row, capabilities)
        self.session.flush()
        return _record(row)

    def delete(self, name: str) -> None:
        row = find_row(self.session, m.Host, name)
        vms = self._vms_on(row)
        if vms:
            raise Conflict(f"host {name!r} runs VM(s) {', '.join(v.name for v in vms)}; "
                           "migrate or remove them first")
        self.session.delete(row)
        self.session.flush()

    def _vms_on(self, host: m.Host) -> list[m.Vm]:
        return list(self.session.scalars(select(m.Vm).where(m.Vm.host_id == host.id).order_by(m.Vm.name)))


def _set_capabilities(row: m.Host, capabilities: dict[str, Any] | None) -> None:
    row.capabilities = capabilities
    row.capabilities_at = None if capabilities is None else now()


def _record(row: m.Host) -> HostRecord:
    return HostRecord(
        id=row.id, name=row.name, cluster=row.cluster.name, address=row.address,
        agent_url=row.agent_url, migration_address=row.migration_address,
        migration_network_up=row.migration_network_up, link_speed_mbps=row.link_speed_mbps,
        status=HostStatus(row.status), capabilities=row.capabilities,
        capabilities_at=utc(row.capabilities_at), created_at=utc(row.created_at),
    )
