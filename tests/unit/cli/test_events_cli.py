"""`ferry events`: filters go to the engine, rows come out oldest first, --follow asks for what
is after the last id shown."""
import json

import pytest
from click.testing import CliRunner

import ferry.cli.events as events
import ferry.client.engine_client as engine_client

E1 = {"id": 1, "time": "2026-01-02T10:11:12+00:00", "severity": "normal", "code": 62, "message": "started"}
E2 = {"id": 2, "time": "2026-01-02T10:11:14+00:00", "severity": "normal", "code": 63, "message": "done"}


class FakeClient:
    def __init__(self, batches):
        self.batches = list(batches)
        self.asked = []

    def get(self, path, params=None):
        self.asked.append((path, params))
        if not self.batches:
            raise KeyboardInterrupt
        return self.batches.pop(0)


@pytest.fixture
def fake(monkeypatch):
    holder = {}

    def install(*batches):
        holder["client"] = FakeClient(batches)
        monkeypatch.setattr(engine_client, "EngineClient", lambda: holder["client"])
        monkeypatch.setattr(events, "FOLLOW_POLL_S", 0)
        return holder["client"]

    return install


def test_table_rows_and_filters(fake):
    client = fake([E1, E2])
    out = CliRunner().invoke(events.events_command, ["--vm", "vm1", "--limit", "5"])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines() == ["2026-01-02 10:11:12    62 normal   started",
                                       "2026-01-02 10:11:14    63 normal   done"]
    assert client.asked == [("/api/events", {"vm": "vm1", "host": None, "migration": None, "limit": 5})]


def test_json(fake):
    fake([E1])
    out = CliRunner().invoke(events.events_command, ["--json"])
    assert json.loads(out.output) == [E1]


def test_follow_asks_after_the_last_id(fake):
    client = fake([E1], [E2], [])
    out = CliRunner().invoke(events.events_command, ["--follow", "--json"])
    assert out.exit_code == 0, out.output
    assert [json.loads(line)["id"] for line in out.output.splitlines()] == [1, 2]
    assert [p.get("after") for _, p in client.asked] == [None, 1, 2, 2]   # nothing new: same id again
