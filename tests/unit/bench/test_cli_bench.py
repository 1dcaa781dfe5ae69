"""`ferry bench ...` refuses bad input with the field and the reason, before touching any lab."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from ferry.cli.main import cli


@pytest.mark.parametrize("args,message", [
    (["--modes", "fast"], "modes: unknown mode 'fast'"),
    (["--sizes", "1024,x"], "sizes: 'x' is not a whole number of MiB"),
    (["--dirty", "0,-3"], "dirty: '-3' is not a whole number of MiB/s"),
    (["--repeat", "0"], "repeat: must be a whole number 1..50"),
    (["--sizes", "256", "--dirty", "100"], "dirty: 100 MiB/s is too much for a 256 MiB guest"),
])
def test_bad_matrix_options(args, message):
    result = CliRunner().invoke(cli, ["bench", "migrate", *args])
    assert result.exit_code == 2, result.output
    assert f"error: {message}" in result.output
    assert "Traceback" not in result.output


def test_unknown_policy():
    result = CliRunner().invoke(cli, ["bench", "policies", "--policies", "Minimal downtime,Fastest"])
    assert result.exit_code == 2 and "policy 'Fastest' not found" in result.output


def test_a_lab_that_is_not_up_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("FERRY_LAB_ROOT", str(tmp_path))
    result = CliRunner().invoke(cli, ["bench", "migrate", "--sizes", "1024", "--lab-id", "7"])
    assert result.exit_code == 1
    assert "lab 7 has 0 host(s) up; the benchmarks need 2: run `FERRY_LAB_ID=7 ferry lab up` first" in result.output
