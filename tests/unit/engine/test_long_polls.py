"""Long polls hold no request thread and each token has a limit of open ones (issue 11 item 4)."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

from ferry.engine.api.long_polls import LongPollLimit, wait_past
from ferry.engine.migration_changes import MigrationChanges
from ferry.engine.services.tokens import issue_token
from tests.unit.engine.test_migration_wait_api import _running_vm
from tests.unit.engine.test_operations_api import api  # noqa: F401 - fixture
from tests.unit.engine.test_orchestrator import RUNNING


def test_a_token_holds_at_most_its_limit_and_a_slot_frees_when_the_poll_ends():
    limit = LongPollLimit(2)
    with limit.slot("a"), limit.slot("a"):
        assert limit.open("a") == 2
        with pytest.raises(Exception) as refused:
            with limit.slot("a"):
                pass
        assert refused.value.status_code == 429
        with limit.slot("b"):             # another token has its own slots
            assert limit.open("b") == 1
    assert limit.open("a") == 0
    with limit.slot("a"):
        pass


def test_limit_below_one_is_refused():
    with pytest.raises(ValueError):
        LongPollLimit(0)


def test_async_wait_wakes_on_a_write_from_another_thread_and_times_out_otherwise():
    changes = MigrationChanges()

    async def scenario():
        seen = changes.count("m")
        threading.Timer(0.05, changes.bump, args=("m",)).start()
        t0 = time.monotonic()
        assert await wait_past(changes, "m", seen, 5.0) is True
        woke = time.monotonic() - t0
        t0 = time.monotonic()
        assert await wait_past(changes, "m", changes.count("m"), 0.1) is False
        return woke, time.monotonic() - t0

    woke, timed_out = asyncio.run(scenario())
    assert woke < 2.0 and timed_out >= 0.09
    assert changes._listeners == {}       # every listener removed


def test_a_write_between_the_read_and_the_wait_is_not_missed():
    changes = MigrationChanges()
    seen = changes.count("m")
    changes.bump("m")
    assert asyncio.run(wait_past(changes, "m", seen, 5.0)) is True


def test_beyond_the_tokens_limit_the_answer_is_429_in_the_error_shape(api, tmp_path):  # noqa: F811
    client, world = api
    client.app.state.long_polls = LongPollLimit(1)
    _running_vm(client, world)
    world.agent("h1").script = [RUNNING]
    m = client.post("/api/vms/vm1/migrate", json={}).json()
    deadline = time.monotonic() + 5
    while (m := client.get(f"/api/migrations/{m['id']}").json())["state"] != "RUNNING" or not m["figures"]:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    first: dict = {}

    def hold():
        r = client.get(f"/api/migrations/{m['id']}/wait", params={"since": m["updated_at"], "timeout": 1.5})
        first["status"] = r.status_code

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.4)
    r = client.get(f"/api/migrations/{m['id']}/wait", params={"since": m["updated_at"], "timeout": 1})
    assert r.status_code == 429, r.text
    detail = r.json()["detail"]
    assert detail["field"] == "token" and "open long polls" in detail["message"] and r.headers["Retry-After"] == "1"
    other = issue_token(str(client.app.state.db.engine.url), "readonly", "other")[0]
    r = client.get(f"/api/migrations/{m['id']}/wait", params={"since": m["updated_at"], "timeout": 0.2},
                   headers={"Authorization": f"Bearer {other}"})
    assert r.status_code == 200                       # another token is not held back
    holder.join(5)
    assert first["status"] == 200
    r = client.get(f"/api/migrations/{m['id']}/wait", params={"since": m["updated_at"], "timeout": 0.1})
    assert r.status_code == 200                       # the slot was given back
    client.post(f"/api/migrations/{m['id']}/cancel", json={})
