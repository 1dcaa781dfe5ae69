"""ferry.lab.qemu_monitor, which the demo and the benchmarks ask for QEMU's own view of a
migration: the QMP commands it sends through libvirt_qemu and how it reads the answers."""
from __future__ import annotations

import json
import sys
import types

import pytest

from ferry.lab import qemu_monitor

ANSWERS = {
    "query-migrate-capabilities": [{"capability": "zero-copy-send", "state": True},
                                   {"capability": "multifd", "state": True},
                                   {"capability": "postcopy-ram", "state": False}],
    "query-migrate-parameters": {"multifd-channels": 4, "max-bandwidth": 0},
    "query-migrate": {"status": "active", "ram": {"transferred": 1}},
}


class Domain:
    def __init__(self):
        self.sent: list[str] = []


class Conn:
    def __init__(self, dom):
        self.dom = dom
        self.looked_up: list[str] = []

    def lookupByName(self, name):  # noqa: N802 - libvirt's name
        self.looked_up.append(name)
        return self.dom


@pytest.fixture
def qmp(monkeypatch):
    """A libvirt_qemu whose monitor pass-through answers from ANSWERS and records what was sent."""
    def command(dom, text, flags):
        assert flags == 0
        execute = json.loads(text)["execute"]
        dom.sent.append(execute)
        return json.dumps({"return": ANSWERS[execute], "id": "libvirt-1"})

    monkeypatch.setitem(sys.modules, "libvirt_qemu", types.SimpleNamespace(qemuMonitorCommand=command))


def test_migration_setup_reads_zero_copy_multifd_and_channels(qmp):
    dom = Domain()
    conn = Conn(dom)
    assert qemu_monitor.migration_setup(conn, "vm1") == {"zero-copy-send": True, "multifd": True,
                                                         "multifd-channels": 4}
    assert conn.looked_up == ["vm1"]
    assert dom.sent == ["query-migrate-capabilities", "query-migrate-parameters"]


def test_a_capability_qemu_does_not_report_is_none(qmp, monkeypatch):
    monkeypatch.setitem(ANSWERS, "query-migrate-capabilities", [{"capability": "multifd", "state": False}])
    setup = qemu_monitor.migration_setup(Conn(Domain()), "vm1")
    assert (setup["zero-copy-send"], setup["multifd"]) == (None, False)


def test_query_migrate_returns_qemus_return_value(qmp):
    assert qemu_monitor.query_migrate(Domain()) == ANSWERS["query-migrate"]
