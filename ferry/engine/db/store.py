"""The unit of work: one database session and a repository per aggregate over it.

`Database.unit_of_work()` opens one (a REST request, an orchestrator step, a CLI command) and
commits it when the block ends without error, else rolls it back: the only way engine code
commits. Rows go in and out as the value types of ferry.engine.options / ferry.engine.policies
and the records of ferry.engine.db.records, so nothing above ferry.engine.db sees SQLAlchemy.
"""
from __future__ import annotations

from sqlalchemy.orm import Session

from ferry.engine.db.repos.clusters import ClusterRepository
from ferry.engine.db.repos.drains import DrainRepository
from ferry.engine.db.repos.events import EventRepository
from ferry.engine.db.repos.hosts import HostRepository
from ferry.engine.db.repos.leases import LeaseRepository
from ferry.engine.db.repos.migrations import MigrationRepository
from ferry.engine.db.repos.policies import PolicyRepository
from ferry.engine.db.repos.throughput import ThroughputRepository
from ferry.engine.db.repos.tokens import TokenRepository
from ferry.engine.db.repos.vms import VmRepository


class Store:
    """The repositories of one unit of work (its session is committed by whoever opened it)."""

    def __init__(self, session: Session):
        self.session = session
        self.policies = PolicyRepository(session)
        self.clusters = ClusterRepository(session, self.policies)
        self.hosts = HostRepository(session)
        self.vms = VmRepository(session, self.policies)
        self.migrations = MigrationRepository(session)
        self.events = EventRepository(session)
        self.tokens = TokenRepository(session)
        self.drains = DrainRepository(session)
        self.leases = LeaseRepository(session)
        self.throughput = ThroughputRepository(session)
