"""`ferry plan --forecast` output and the ETA beside the `ferry migrate --wait` bar."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ferry.cli.main import cli
from ferry.cli.progress import BAR_LINE_WIDTH, BAR_WIDTH, ELAPSED_WIDTH, bar_line, eta_text, format_eta
from tests.unit.engine.test_migration_eta import rec

SCENARIOS = Path(__file__).resolve().parents[3] / "docs" / "scenarios"
MIB = 1 << 20


def run(*args):
    return CliRunner().invoke(cli, ["plan", *args])


def test_scenario_forecast_json_is_the_forecast_object():
    result = run("--scenario", str(SCENARIOS / "large-vm-forecast.yaml"), "--forecast", "--json")
    assert result.exit_code == 0, result.output
    fc = json.loads(result.output)["forecast"]
    assert fc["outcome"] == "converge" and set(fc["range"]) == {"low", "high"}
    assert fc["range"]["low"] <= fc["totalSeconds"] <= fc["range"]["high"]
    assert fc["iterations"] == len(fc["steps"])


def test_scenario_forecast_text_says_the_verdict_and_the_iterations():
    result = run("--scenario", str(SCENARIOS / "large-vm-forecast.yaml"), "--forecast", "--policy", "Post-copy migration")
    assert result.exit_code == 0, result.output
    assert "Forecast" in result.output and "aborts after" in result.output
    assert "iteration  send MiB" in result.output and "abort" in result.output.splitlines()[-1]


def test_forecast_without_memory_is_exit_2_naming_the_field():
    result = run("--scenario", str(SCENARIOS / "very-large-vm.yaml"), "--forecast")
    assert result.exit_code == 2 and "vm.memory_mib" in result.output


def test_plan_without_forecast_prints_no_forecast():
    result = run("--scenario", str(SCENARIOS / "large-vm-forecast.yaml"))
    assert result.exit_code == 0 and "Forecast" not in result.output


@pytest.mark.parametrize("seconds, text", [(0.2, "~1 s"), (12.4, "~12 s"), (99, "~99 s"), (150, "~2 min"),
                                           (5999, "~100 min"), (9000, "~2.5 h")])
def test_format_eta(seconds, text):
    assert format_eta(seconds) == text


@pytest.mark.parametrize("eta, text", [
    ({"seconds": 12.0, "outcome": "converge"}, "ETA ~12 s"),
    ({"seconds": 25.0, "outcome": "abort"}, "will abort in ~25 s"),
    ({"seconds": None, "outcome": "abort"}, "never converges"),
    ({"seconds": 9.0, "outcome": "postcopy"}, "post-copy, ends in ~9 s"),
    (None, None),
])
def test_eta_text(eta, text):
    assert eta_text({"state": "RUNNING", "eta": eta}) == text


def test_eta_text_computes_the_eta_when_the_record_has_none():
    assert eta_text(rec()) == "ETA ~3 s"            # 100 MiB at 50 MiB/s + 0.75 s


def test_bar_line_shows_the_eta_and_fits_80_columns_with_the_bar():
    assert BAR_WIDTH + 1 + BAR_LINE_WIDTH + 1 + ELAPSED_WIDTH == 80
    line = bar_line({**rec(), "progress": 42})
    assert line == "42% · ETA ~3 s · 50 MiB/s · 100 MiB left"
    worst = {**rec(data_remaining=1023 * MIB, bandwidth_bps=1023 * MIB), "progress": 100, "state": "CANCELLING",
             "eta": {"seconds": 5000.0, "outcome": "abort"}}
    text = bar_line(worst)
    assert len(text) <= BAR_LINE_WIDTH and text.startswith("100% · cancelling · will abort in ~83 min")


def test_bar_line_before_figures():
    assert bar_line({"state": "PENDING", "progress": 0}) == "0% · starting"
