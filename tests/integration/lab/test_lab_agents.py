"""The session lab runs one host agent per host, and a test can restart one with extra options."""
from __future__ import annotations

import socket

import pytest

from ferry.lab import agent_available, procs

pytestmark = pytest.mark.lab


def listening(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture
def with_agents(lab):
    assert agent_available(), "ferry.agent has no runnable module: lab up cannot start agents"
    return lab


def test_each_host_has_a_running_agent_on_its_address(with_agents):
    lab = with_agents
    hosts = lab.status()["hosts"]
    assert len(hosts) >= 3
    for h in hosts:
        assert h["agent"]["running"], h["agent"]
        assert h["agent"]["url"] == f"https://{h['address']}:54321/"
        assert listening(h["address"], 54321)


def test_restart_agent_with_extra_args_and_back(with_agents):
    lab = with_agents
    before = lab.status()["hosts"][0]["agent"]
    agent = lab.restart_agent(1, ["--old-agent"])
    try:
        assert agent["pid"] != before["pid"] and not procs.alive(before["pid"])
        assert agent.get("error") is None, agent["error"]
        status = lab.status()["hosts"][0]["agent"]
        assert status["running"] and status["extra_args"] == ["--old-agent"]
        assert listening(lab.host(1).address, 54321)
    finally:
        restored = lab.restart_agent(1, [])
    assert restored["extra_args"] == [] and restored.get("error") is None
