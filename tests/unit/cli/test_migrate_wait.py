"""`ferry migrate --wait` (ferry.client.follow) follows a migration with the engine's long poll, and with plain GETs
against an engine that has no GET /api/migrations/{id}/wait."""
from __future__ import annotations

import pytest

from ferry.client import follow
from ferry.common.errors import NotFound, OperationFailed


class Engine:
    def __init__(self, states, has_wait=True):
        self.states = list(states)
        self.has_wait = has_wait
        self.calls = []

    def get(self, path, params=None):
        self.calls.append((path, params))
        if path.endswith("/wait") and not self.has_wait:
            raise OperationFailed("the engine has no GET ... (HTTP 404)")
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return {"id": "m1", "state": state, "updated_at": f"t{len(self.calls)}"}


def test_long_poll_names_what_was_seen_and_needs_no_sleep(monkeypatch):
    monkeypatch.setattr(follow.time, "sleep", lambda s: pytest.fail("a long poll does not sleep"))
    engine = Engine(["RUNNING", "RUNNING", "SUCCEEDED"])
    seen = []
    final = follow.wait_for(engine, {"id": "m1", "state": "PENDING", "updated_at": "t0"},
                                 on_update=lambda m: seen.append(m["state"]))
    assert final["state"] == "SUCCEEDED" and seen == ["RUNNING", "RUNNING", "SUCCEEDED"]
    assert [p for p, _ in engine.calls] == ["/api/migrations/m1/wait"] * 3
    assert engine.calls[0][1]["since"] == "t0" and engine.calls[1][1]["since"] == "t1"
    assert all(0 < params["timeout"] <= follow.LONG_POLL_S for _, params in engine.calls)


def test_older_engine_is_polled_with_plain_gets(monkeypatch):
    sleeps = []
    monkeypatch.setattr(follow.time, "sleep", sleeps.append)
    engine = Engine(["RUNNING", "SUCCEEDED"], has_wait=False)
    final = follow.wait_for(engine, {"id": "m1", "state": "PENDING", "updated_at": "t0"}, poll_s=0.2)
    assert final["state"] == "SUCCEEDED"
    assert [p for p, _ in engine.calls] == ["/api/migrations/m1/wait", "/api/migrations/m1", "/api/migrations/m1"]
    assert sleeps == [0.2, 0.2]


def test_a_migration_that_does_not_exist_still_says_so():
    class Gone(Engine):
        def get(self, path, params=None):
            raise NotFound("migration", "m1")

    with pytest.raises(NotFound):
        follow.wait_for(Gone(["RUNNING"]), {"id": "m1", "state": "RUNNING", "updated_at": "t0"})


def test_timeout_bounds_the_wait():
    engine = Engine(["RUNNING"])
    final = follow.wait_for(engine, {"id": "m1", "state": "RUNNING", "updated_at": "t0"}, timeout=0)
    assert final["state"] == "RUNNING" and engine.calls == []
