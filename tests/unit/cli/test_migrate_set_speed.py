"""`ferry migrate set-speed ID MIBS` asks the engine's speed route and says what the agent did."""
from click.testing import CliRunner

import ferry.cli.migrate as migrate


class FakeEngine:
    def __init__(self):
        self.calls = []

    def post(self, path, body=None):
        self.calls.append(("POST", path, body))
        return {"migration": "m1", "max_bandwidth_mibs": body["mibs"], "message": f"maxBandwidth set to {body['mibs']} MiB/s"}


def test_set_speed_posts_mibs_and_prints_the_agents_answer(monkeypatch):
    engine = FakeEngine()
    monkeypatch.setattr(migrate, "_client", lambda: engine)
    out = CliRunner().invoke(migrate.migrate_group, ["set-speed", "m1", "40"])
    assert out.exit_code == 0, out.output
    assert engine.calls == [("POST", "/api/migrations/m1/speed", {"mibs": 40})]
    assert "maxBandwidth set to 40 MiB/s" in out.output


def test_set_speed_refuses_a_non_number_before_asking_the_engine(monkeypatch):
    engine = FakeEngine()
    monkeypatch.setattr(migrate, "_client", lambda: engine)
    out = CliRunner().invoke(migrate.migrate_group, ["set-speed", "m1", "fast"])
    assert out.exit_code == 2 and "MIBS" in out.output and engine.calls == []
