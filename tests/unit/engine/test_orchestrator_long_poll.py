"""The orchestrator long-polls agents that know `waitForChange` and learns of the end at once;
the REST long poll (GET /api/migrations/{id}/wait) wakes when the orchestrator writes."""
from __future__ import annotations

import threading
import time

from ferry.engine.migration_changes import MigrationChanges
from tests.unit.engine.test_orchestrator import RUNNING, FakeAgent, env, succeeded, wait_final  # noqa: F401


class VersionedAgent(FakeAgent):
    """A fake agent whose status changes when the test says so, answering long polls the moment
    it does (as the real agent's MigrationJob does)."""

    def __init__(self, base: FakeAgent):
        super().__init__(base.name, base.world)
        self.cond = threading.Condition()
        self.version = 1
        self.status = dict(RUNNING)
        self.status_calls: list[tuple[float, dict]] = []

    def change(self, status: dict) -> None:
        with self.cond:
            self.version += 1
            self.status = status
            self.cond.notify_all()

    def call(self, method, params):
        if method != "VM.getMigrationStatus":
            return super().call(method, params)
        self.calls.append((method, params))
        self.status_calls.append((time.monotonic(), params))
        wait = params.get("waitForChange")
        with self.cond:
            if wait:
                self.cond.wait_for(lambda: self.version != wait["version"], wait["timeout"])
            status = {**self.status, "version": self.version}
        if status["state"] == "succeeded":
            return self._end(params["vmID"], status)
        return status


def test_end_is_seen_within_milliseconds_with_a_slow_poll_interval(env):
    db, world, orch, uuid = env
    orch.poll_interval = 1.0                          # a plain poller would take up to 1 s
    url = next(u for u, a in world.agents.items() if a.name == "h1")
    agent = world.agents[url] = VersionedAgent(world.agents[url])
    m = orch.migrate("vm1", to="h2")
    while not agent.status_calls:
        time.sleep(0.005)
    time.sleep(0.2)
    ended, ended_wall = time.monotonic(), time.time()
    agent.change(succeeded())
    final = wait_final(db, m.id)
    assert final.state == "SUCCEEDED"
    assert final.finished_at.timestamp() - ended_wall < 0.3   # recorded at once, not at the next poll
    last_call_answered_by = max(t for t, _ in agent.status_calls)
    assert last_call_answered_by < ended + 0.2        # the end came back on a call already waiting
    assert agent.status_calls[-1][1]["waitForChange"]["version"] >= 1


def test_progress_still_arrives_at_least_once_a_second_when_nothing_changes(env):
    db, world, orch, uuid = env
    url = next(u for u, a in world.agents.items() if a.name == "h1")
    agent = world.agents[url] = VersionedAgent(world.agents[url])
    m = orch.migrate("vm1", to="h2")
    time.sleep(2.3)
    agent.change(succeeded())
    assert wait_final(db, m.id).state == "SUCCEEDED"
    times = [t for t, _ in agent.status_calls]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert len(times) >= 3 and max(gaps) < 1.5        # each long poll is held at most LONG_POLL_S
    assert all(p["waitForChange"]["timeout"] <= 1.0 for _, p in agent.status_calls)


def test_agent_without_the_extension_is_still_followed(env):
    db, world, orch, uuid = env
    world.agent("h1").script = [RUNNING, RUNNING, succeeded()]     # no version in its statuses
    m = orch.migrate("vm1", to="h2")
    assert wait_final(db, m.id).state == "SUCCEEDED"
    polls = [p for meth, p in world.agent("h1").calls if meth == "VM.getMigrationStatus"]
    assert len(polls) == 3


def test_orchestrator_writes_wake_a_waiter(env):
    db, world, orch, uuid = env
    world.agent("h1").script = [RUNNING, succeeded()]
    m = orch.migrate("vm1", to="h2")
    seen = orch.changes.count(m.id)
    assert orch.changes.wait_past(m.id, seen, 5)
    wait_final(db, m.id)
    assert orch.changes.count(m.id) > seen


def test_changes_counter_wait_times_out_and_wakes():
    changes = MigrationChanges()
    t0 = time.monotonic()
    assert not changes.wait_past("m", 0, 0.1)
    assert time.monotonic() - t0 >= 0.09
    threading.Timer(0.05, changes.bump, args=("m",)).start()
    assert changes.wait_past("m", 0, 5)
    assert changes.count("m") == 1 and changes.count("other") == 0
