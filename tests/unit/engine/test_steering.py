"""Force-complete from the engine (ferry.engine.steering): asks the source agent, says which
happened, records event 9104; refuses what is not running."""
from __future__ import annotations

import pytest

from ferry.common.errors import Conflict
from ferry.common.jsonrpc import agent_error
from ferry.common.vmspec import VmSpec
from ferry.engine import audit
from ferry.engine.db import Database
from ferry.engine.steering import VERB, force_complete


class Agent:
    def __init__(self, answer=None, error=None):
        self.answer, self.error, self.calls = answer, error, []

    def __call__(self, url):
        self.url = url
        return self

    def call(self, method, params):
        self.calls.append((method, params))
        if self.error:
            raise self.error
        return self.answer


@pytest.fixture
def db(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'e.db'}")
    db.upgrade()
    with db.unit_of_work() as s:
        s.clusters.create("c")
        for i in (1, 2):
            s.hosts.add(f"h{i}", cluster="c", address=f"127.9.0.{i}", status="UP")
        s.vms.add(VmSpec(name="vm1", memory_mib=256, vcpus=1, kernel="/k"), cluster="c", host="h1", status="UP")
        m = s.migrations.create("vm1", source="h1", destination="h2", state="RUNNING")
    db.mid = m.id
    yield db
    db.dispose()


def test_force_complete_asks_the_source_agent_and_says_which_happened(db):
    agent = Agent({"mode": "downtime", "downtimeMs": 3000, "reason": "post-copy not allowed: ..."})
    out = force_complete(db, agent, db.mid, user="ops")
    assert agent.url == "https://127.9.0.1:54321/" and agent.calls[0][0] == VERB
    assert out["mode"] == "downtime" and out["downtime_ms"] == 3000
    with db.unit_of_work() as s:
        (event,) = [e for e in s.events.list(migration_id=db.mid) if e.code == audit.FERRY_MIGRATION_FORCE_COMPLETE.code]
    assert "ops" in event.message and "post-copy not allowed" in event.message


def test_only_a_running_migration_can_be_forced(db):
    with db.unit_of_work() as s:
        s.migrations.update(db.mid, state="SUCCEEDED")
    with pytest.raises(Conflict, match="SUCCEEDED"):
        force_complete(db, Agent({}), db.mid)


def test_a_migration_the_agent_no_longer_runs_is_a_conflict(db):
    with pytest.raises(Conflict, match="no longer running"):
        force_complete(db, Agent(error=agent_error("migCancelErr", "Migration not in progress")), db.mid)
