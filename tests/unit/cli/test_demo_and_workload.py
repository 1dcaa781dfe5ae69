"""The demo's pass/fail rules and `ferry vm add --workload` parsing (pure parts of the CLI)."""
import pytest

from ferry.cli.demo import demo_checks
from ferry.cli.inventory import parse_workload
from ferry.common.errors import InvalidInput

GOOD = {
    "state": "SUCCEEDED",
    "plan": {"params": {"zerocopy": True, "parallel": 2},
             "explanation": [{"field": "parallel", "from": "DISABLED", "to": "AUTO_PARALLEL, 2 connections",
                              "reason": "required by zero-copy"}]},
    "result": {"flags": ["VIR_MIGRATE_PARALLEL", "VIR_MIGRATE_ZEROCOPY"]},
}


def test_demo_passes_only_when_every_claim_holds():
    assert all(ok for _, ok in demo_checks(GOOD, verified=True))
    assert not dict(demo_checks(GOOD, verified=False))["the guest's memory is intact after the migration"]


@pytest.mark.parametrize("change, claim", [
    ({"state": "FAILED"}, "the migration succeeded"),
    ({"plan": {**GOOD["plan"], "explanation": []}}, "the planner forced parallel migrations from Disabled to auto-parallel"),
    ({"plan": {**GOOD["plan"], "params": {"parallel": 2}}}, "the planner turned zero-copy on"),
    ({"result": {"flags": ["VIR_MIGRATE_PARALLEL"]}}, "the agent passed VIR_MIGRATE_ZEROCOPY to libvirt"),
])
def test_demo_fails_when_a_claim_does_not_hold(change, claim):
    checks = dict(demo_checks({**GOOD, **change}, verified=True))
    assert checks[claim] is False
    assert sum(not ok for ok in checks.values()) == 1


def test_parse_workload():
    assert parse_workload("fill=850,dirty=32") == {"fill_mib": 850, "dirty_mib_s": 32}
    assert parse_workload(" fill=64 , spot=10 ") == {"fill_mib": 64, "spot_pages": 10}
    assert parse_workload(None) is None


@pytest.mark.parametrize("text, field", [("dirty=3", "workload.fill"), ("fill=x", "workload.fill"),
                                         ("fill=1,speed=2", "workload"), ("fill", "workload")])
def test_parse_workload_names_the_bad_field(text, field):
    with pytest.raises(InvalidInput) as e:
        parse_workload(text)
    assert e.value.field == field


class FakeEngine:
    def __init__(self):
        self.calls = []

    def post(self, path, body=None):
        self.calls.append(("POST", path, body))
        return {"id": "m1", "vm": "vm1", "source": "h1", "destination": "h2", "state": "PENDING"}


def test_migrate_vm_starts_a_migration_and_subcommands_stay_reachable(monkeypatch):
    from click.testing import CliRunner

    import ferry.cli.migrate as migrate

    engine = FakeEngine()
    monkeypatch.setattr(migrate, "_client", lambda: engine)
    out = CliRunner().invoke(migrate.migrate_group, ["vm1", "--to", "h2", "--policy", "Very large VMs"])
    assert out.exit_code == 0, out.output
    assert engine.calls == [("POST", "/api/vms/vm1/migrate", {"to": "h2", "policy": "Very large VMs"})]
    assert "ferry migrate cancel m1" in out.output
    out = CliRunner().invoke(migrate.migrate_group, ["cancel", "m1"])
    assert out.exit_code == 0, out.output
    assert engine.calls[-1] == ("POST", "/api/migrations/m1/cancel", {})
