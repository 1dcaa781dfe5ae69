"""The list/show/remove commands every inventory resource gets from one helper
(ferry.cli.inventory.common.list_show_remove): the request each sends and what it prints."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ferry.cli.inventory import common
from ferry.cli.main import cli


class Engine:
    def __init__(self):
        self.calls: list[tuple] = []

    def get(self, path, params=None):
        self.calls.append(("GET", path, params))
        return [] if path.count("/") == 2 else {"path": path}

    def delete(self, path):
        self.calls.append(("DELETE", path))


@pytest.fixture
def engine(monkeypatch):
    e = Engine()
    monkeypatch.setattr(common, "engine_client", lambda: e)
    return e


def run(*args):
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("resource, path, noun", [
    ("cluster", "/api/clusters", "cluster"), ("host", "/api/hosts", "host"), ("vm", "/api/vms", "VM"),
    ("policy", "/api/policies", "policy"),
])
def test_show_and_remove_address_the_named_record(engine, resource, path, noun):
    assert json.loads(run(resource, "show", "x1", "--json")) == {"path": f"{path}/x1"}
    assert run(resource, "remove", "x1") == f"{noun} x1 removed\n"
    assert engine.calls == [("GET", f"{path}/x1", None), ("DELETE", f"{path}/x1")]


@pytest.mark.parametrize("args, path, params", [
    (["cluster", "list"], "/api/clusters", {}),
    (["policy", "list"], "/api/policies", {}),
    (["host", "list", "--cluster", "c1"], "/api/hosts", {"cluster": "c1"}),
    (["vm", "list", "--host", "h1"], "/api/vms", {"cluster": None, "host": "h1"}),
])
def test_list_sends_its_filters(engine, args, path, params):
    assert json.loads(run(*args, "--json")) == []
    assert engine.calls == [("GET", path, params)]
