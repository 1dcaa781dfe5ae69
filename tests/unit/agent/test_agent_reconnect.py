"""The agent survives libvirtd going away and coming back (issue 11, "Agents survive libvirtd")."""
import threading
import time

import libvirt
import pytest

from ferry.agent.api import Agent
from ferry.agent.config import AgentConfig
from ferry.agent.libvirt_edge import EventHub, LibvirtLink, ReconnectingConnection, backoff_delay
from ferry.common.jsonrpc import JsonRpcError
from tests.unit.agent.fake_libvirt import FakeConnection, domain_xml
from tests.unit.agent.test_agent_api import GOOD_FACTS, VM, rpc

REFUSED = "Failed to connect socket to '/run/libvirt/libvirt-sock': Connection refused"


class Daemon:
    """Opens fake connections while 'up'; refuses like a stopped libvirtd while down."""

    def __init__(self):
        self.up = True
        self.opened: list[FakeConnection] = []

    def open(self):
        if not self.up:
            raise libvirt.libvirtError(REFUSED)
        conn = FakeConnection()
        conn.add_domain(domain_xml())
        self.opened.append(conn)
        return conn

    def crash(self):
        self.up = False
        self.opened[-1].die()


def linked_agent(daemon, check_interval=0.05, destination=None):
    link = LibvirtLink(libvirt, daemon.open, check_interval=check_interval, backoff=lambda attempt: 0.05)
    conn = ReconnectingConnection(link)
    events = EventHub(conn, libvirt)
    agent = Agent(conn, libvirt, events, AgentConfig(status_interval=0.05), destination=destination,
                  zerocopy_facts=lambda: GOOD_FACTS)
    link.on_connect(events.reregister)
    link.on_connect(agent.on_libvirt_connected)
    link.start()
    return agent, link


def until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def answers(agent):
    try:
        rpc(agent, "Host.getStats", {})
        return True
    except JsonRpcError as exc:
        assert exc.name == "libvirtUnavailable", exc
        return False


def test_backoff_steps_then_every_ten_seconds():
    assert [backoff_delay(i) for i in range(8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


def test_verbs_answer_libvirt_unavailable_then_the_agent_comes_back_by_itself():
    daemon = Daemon()
    agent, link = linked_agent(daemon)
    try:
        assert rpc(agent, "VM.getStats", {"vmID": VM})["status"] == "Up"
        daemon.crash()
        assert until(lambda: not link.alive)
        for verb, params in (("Host.getStats", {}), ("Host.getVMList", {}), ("Host.getCapabilities", {}),
                             ("VM.getStats", {"vmID": VM}), ("VM.migrate", {"vmID": VM, "params": {"dst": "h"}}),
                             ("VM.getMigrationStatus", {"vmID": VM})):
            t0 = time.monotonic()
            with pytest.raises(JsonRpcError) as err:
                rpc(agent, verb, params)
            assert time.monotonic() - t0 < 0.5, verb
            assert err.value.name == "libvirtUnavailable" and err.value.code == 104, verb
            assert "libvirt unavailable" in err.value.message and "reconnecting" in err.value.message
            assert "Connection refused" in err.value.message
        daemon.up = True
        assert until(lambda: answers(agent))
        assert link.connects == 2 and len(link.outages) == 1
        assert rpc(agent, "VM.getStats", {"vmID": VM})["status"] == "Up"
        assert daemon.opened[0].closed                       # the dead connection was let go
        # The event callbacks were registered again on the new connection.
        assert daemon.opened[1].callbacks.get(libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE)
    finally:
        link.stop()


def test_a_call_on_a_dead_connection_says_unavailable_not_no_vm():
    """Before the watcher notices, the failed call itself finds the connection dead."""
    daemon = Daemon()
    agent, link = linked_agent(daemon, check_interval=30.0)
    try:
        daemon.crash()
        with pytest.raises(JsonRpcError) as err:
            rpc(agent, "VM.getStats", {"vmID": VM})
        assert err.value.name == "libvirtUnavailable"
        assert not link.alive
        daemon.up = True
        assert until(lambda: answers(agent))
    finally:
        link.stop()


def test_an_agent_started_while_libvirtd_is_down_serves_and_connects_later():
    daemon = Daemon()
    daemon.up = False
    agent, link = linked_agent(daemon)
    try:
        assert not answers(agent)
        daemon.up = True
        assert until(lambda: answers(agent))
        assert link.connects == 1
    finally:
        link.stop()


def test_migration_status_of_a_followed_job_still_answers_while_libvirt_is_away():
    daemon = Daemon()
    release = threading.Event()

    class Dst:
        def call(self, method, params):
            return {}

    agent, link = linked_agent(daemon, destination=lambda address: Dst())
    try:
        daemon.opened[-1].domains[VM].migration_script = lambda dom: release.wait(5)
        rpc(agent, "VM.migrate", {"vmID": VM, "params": {"dst": "127.0.1.3"}})
        assert until(lambda: rpc(agent, "VM.getMigrationStatus", {"vmID": VM})["state"] == "running")
        daemon.crash()
        assert until(lambda: not link.alive)
        assert rpc(agent, "VM.getMigrationStatus", {"vmID": VM})["state"] == "running"
        release.set()
    finally:
        link.stop()
