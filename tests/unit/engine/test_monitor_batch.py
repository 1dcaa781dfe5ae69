"""The host monitor records many agents' answers in one transaction (ferry.engine.monitor_batch,
issue 18): the database ends the same as when each answer is recorded on its own, and the
batch's own cases (a VM one host lists and another no longer does, answers out of order,
a host removed meanwhile) come out right."""
import time

import pytest

from ferry.common.jsonrpc import TRANSPORT_ERROR, JsonRpcError
from ferry.engine.db import Database, upgrade_database
from ferry.engine.db.records import HostStatus, VmStatus
from ferry.engine.monitor import MISSING_POLLS_BEFORE_DOWN, HostMonitor

HOSTS = ("h1", "h2", "h3", "h4")


class Agents:
    """Per agent URL: the VMs it runs (by uuid) or None when it cannot be reached."""

    def __init__(self):
        self.running: dict[str, list[str] | None] = {}

    def __call__(self, url):
        agents = self

        class Client:
            def call(self, method, params):
                vms = agents.running[url]
                if vms is None:
                    raise JsonRpcError(TRANSPORT_ERROR, f"{url}: connection refused")
                if method == "Host.getCapabilities":
                    return {"cpuCores": 4, "zerocopy": {"available": False}}
                if method == "Host.getStats":
                    return {"memFree": 1000 + len(vms)}
                return {"vms": [{"vmID": u, "status": "Up"} for u in vms]}

        return Client()


@pytest.fixture
def urls(database_url, request):
    """Two empty databases of one kind (SQLite files or PostgreSQL databases)."""
    if database_url.startswith("sqlite"):
        return [database_url, database_url.replace("engine.db", "other.db")]
    server = request.getfixturevalue("postgres_server")
    name = f"other_{abs(hash(request.node.nodeid)) % 10**8}"
    server.admin(f'DROP DATABASE IF EXISTS "{name}"')
    server.admin(f'CREATE DATABASE "{name}"')
    return [database_url, server.url(name)]


def _fleet(url):
    upgrade_database(url)
    db = Database(url)
    with db.unit_of_work() as store:
        store.clusters.create("c")
        for i, h in enumerate(HOSTS):
            store.hosts.add(h, cluster="c", address=f"127.0.0.{i + 2}")
        for j in range(8):
            store.vms.add({"name": f"vm{j}", "memory_mib": 512, "vcpus": 1, "kernel": "/boot/vmlinuz"},
                          cluster="c", host=HOSTS[j % 4], status="UP")
        store.hosts.update("h4", status="MAINTENANCE")
        uuids = {v.name: v.uuid for v in store.vms.list()}
        urls = {h.name: h.agent_url for h in store.hosts.list()}
    agents = Agents()
    for h in HOSTS:
        agents.running[urls[h]] = [uuids[f"vm{j}"] for j in range(8) if HOSTS[j % 4] == h]
    return db, HostMonitor(db, agent=agents), agents, urls, uuids


def _state(db):
    with db.unit_of_work() as store:
        hosts = {h.name: (h.status, h.capabilities) for h in store.hosts.list()}
        vms = {v.name: (v.host, v.status) for v in store.vms.list()}
    return hosts, vms


def _round(monitor, urls, batched):
    answers = [monitor._ask(h, urls[h]) for h in HOSTS]
    if batched:
        monitor._record(answers)
    else:
        for a in answers:
            monitor._record([a])


def _scenario(url, batched):
    """vm1 moves from h2 to h3 behind the engine's back, vm0 disappears from h1, h2 becomes
    unreachable after that; three rounds of refreshes."""
    db, monitor, agents, urls, uuids = _fleet(url)
    _round(monitor, urls, batched)
    agents.running[urls["h2"]].remove(uuids["vm1"])
    agents.running[urls["h3"]].append(uuids["vm1"])
    agents.running[urls["h1"]].remove(uuids["vm0"])
    agents.running[urls["h1"]].append("not-in-the-inventory")
    states = []
    for _ in range(MISSING_POLLS_BEFORE_DOWN):
        _round(monitor, urls, batched)
        states.append(_state(db))
    agents.running[urls["h2"]] = None
    _round(monitor, urls, batched)
    states.append(_state(db))
    return states


def test_a_batch_leaves_the_database_as_answers_recorded_one_by_one_would(urls):
    assert _scenario(urls[0], True) == _scenario(urls[1], False)


def test_what_a_batch_records_for_moved_missing_unreachable_and_maintenance_hosts(database_url):
    *_, (hosts, vms) = _scenario(database_url, True)
    assert vms["vm1"] == ("h3", VmStatus.UP)          # listed by h3 now, not missing from h2
    assert vms["vm0"] == (None, VmStatus.DOWN)        # gone from h1 for MISSING_POLLS_BEFORE_DOWN polls
    assert vms["vm4"] == ("h1", VmStatus.UP)
    assert hosts["h2"][0] is HostStatus.DOWN and hosts["h1"][0] is HostStatus.UP
    assert hosts["h4"][0] is HostStatus.MAINTENANCE   # the admin's state stays
    assert hosts["h4"][1]["memFree"] == 1002 and hosts["h1"][1]["stats"] == {"memFree": 1002}


def test_a_vm_one_host_of_the_batch_lists_and_another_no_longer_runs_ends_on_the_first(database_url):
    db, monitor, agents, urls, uuids = _fleet(database_url)
    agents.running[urls["h2"]].remove(uuids["vm1"])
    monitor._record([monitor._ask("h2", urls["h2"])])          # vm1 missing once from h2
    agents.running[urls["h3"]].append(uuids["vm1"])
    # h2 makes vm1 DOWN (missing twice); h3's answer, in the same batch, then places it on h3
    monitor._record([monitor._ask(h, urls[h]) for h in ("h2", "h3")])
    assert _state(db)[1]["vm1"] == ("h3", VmStatus.UP)


def test_an_answer_older_than_the_one_recorded_is_dropped(database_url):
    db, monitor, agents, urls, uuids = _fleet(database_url)
    old = monitor._ask("h1", urls["h1"])
    agents.running[urls["h1"]].append(uuids["vm1"])
    time.sleep(0.01)
    monitor._record([monitor._ask("h1", urls["h1"])])
    monitor._record([old])
    assert _state(db)[0]["h1"][1]["memFree"] == 1003


def test_an_answer_for_a_host_removed_meanwhile_does_not_lose_the_others(database_url):
    db, monitor, agents, urls, uuids = _fleet(database_url)
    answers = [monitor._ask(h, urls[h]) for h in ("h1", "h3")]
    with db.unit_of_work() as store:
        for vm in ("vm2", "vm6"):
            store.vms.update(vm, host=None, status="DOWN")
        store.hosts.delete("h3")
    monitor._record(answers)
    hosts, _ = _state(db)
    assert set(hosts) == {"h1", "h2", "h4"} and hosts["h1"][0] is HostStatus.UP


def test_the_running_monitor_refreshes_every_host_through_its_writer(database_url):
    db, monitor, agents, urls, uuids = _fleet(database_url)
    monitor.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with db.unit_of_work() as store:
                if all(s.refreshed for s in store.hosts.schedule()):
                    break
            time.sleep(0.1)
    finally:
        monitor.stop()
    hosts, _ = _state(db)
    assert {h: s for h, (s, _c) in hosts.items()} == {"h1": HostStatus.UP, "h2": HostStatus.UP,
                                                      "h3": HostStatus.UP, "h4": HostStatus.MAINTENANCE}
    assert not monitor._in_flight


@pytest.mark.parametrize("workers", [0, -1])
def test_a_monitor_needs_a_worker(tmp_path, workers):
    with pytest.raises(ValueError, match="workers"):
        HostMonitor(Database(f"sqlite:///{tmp_path / 'w.db'}"), workers=workers)


def test_with_a_share_the_monitor_refreshes_only_the_hosts_its_engine_holds(tmp_path):
    """Several engines on one database (issue 18): each monitor asks only its share of the hosts
    (ownership.hosts_to_refresh); with no share (one engine, SQLite's default) it asks them all."""
    db, monitor, _agents, _urls, _uuids = _fleet(f"sqlite:///{tmp_path / 'engine.db'}")
    shared = HostMonitor(db, agent=monitor.agent, share=lambda names: [n for n in names if n in ("h1", "h3")])
    with db.reads() as store:
        assert sorted(h.name for h in monitor.hosts_to_refresh(store)) == sorted(HOSTS)
        assert sorted(h.name for h in shared.hosts_to_refresh(store)) == ["h1", "h3"]


@pytest.mark.parametrize(("read", "meanwhile"), [
    ("PREPARING_FOR_MAINTENANCE", "MAINTENANCE"),   # the host's drain ended
    ("MAINTENANCE", "UP"),                          # the admin activated it
    ("UP", "PREPARING_FOR_MAINTENANCE"),            # the admin started a drain
])
def test_a_status_committed_after_the_batch_read_it_is_not_overwritten(database_url, monkeypatch, read, meanwhile):
    """The batch reads the hosts' statuses, asks nothing more, and writes what follows from them;
    a status another transaction committed in between stays (the batch once wrote its stale read
    back, and a host whose drain was DONE stayed PREPARING_FOR_MAINTENANCE: CI, stop 22)."""
    from ferry.engine.db.repos.hosts import HostRepository

    db, monitor, agents, urls, uuids = _fleet(database_url)
    with db.unit_of_work() as store:
        store.hosts.update("h1", status=read)
    real_states = HostRepository.states

    def states_then_another_commit(self, names):
        got = real_states(self, names)
        if "h1" in names:
            with db.unit_of_work() as other:
                other.hosts.update("h1", status=meanwhile)
        return got

    answers = [monitor._ask(h, urls[h]) for h in ("h1", "h2")]
    agents.running[urls["h2"]] = None
    answers.append(monitor._ask("h2", urls["h2"]))
    monkeypatch.setattr(HostRepository, "states", states_then_another_commit)
    monitor._record(answers[:1])
    monitor._record(answers[2:])    # and an unreachable host's status still changes
    hosts, _ = _state(db)
    assert hosts["h1"][0] is HostStatus(meanwhile) and hosts["h1"][1]["memFree"] == 1002
    assert hosts["h2"][0] is HostStatus.DOWN
