"""The one parser of the "CUSTOM:N" short forms (ferry.engine.options.short_form), and the three
places that read them through it: the REST API's bodies, scenario files and the CLI."""
from __future__ import annotations

import pytest

from ferry.cli.inventory.common import parse_bandwidth
from ferry.common.errors import InvalidInput
from ferry.engine.api.schemas import BandwidthBody, ParallelBody
from ferry.engine.options import BandwidthMode, BandwidthSetting, ParallelMode, ParallelSetting, short_form
from ferry.engine.scenario import parse_bandwidth as scenario_bandwidth


@pytest.mark.parametrize("text, expected", [
    ("CUSTOM:8", ("CUSTOM", 8)),
    (" custom : 8 ", ("CUSTOM", 8)),
    ("8", ("CUSTOM", 8)),
    ("auto-parallel", ("AUTO_PARALLEL", None)),
    ("AUTO", ("AUTO", None)),
    ("CUSTOM", ("CUSTOM", None)),
    ("CUSTOM:", ("CUSTOM", "")),
    ("CUSTOM:lots", ("CUSTOM", "lots")),
    ("CUSTOM:-5", ("CUSTOM", "-5")),
])
def test_short_form_splits_mode_and_number(text, expected):
    assert short_form(text) == expected


@pytest.mark.parametrize("text, setting", [
    ("CUSTOM:8", ParallelSetting(ParallelMode.CUSTOM, 8)),
    ("8", ParallelSetting(ParallelMode.CUSTOM, 8)),
    ("auto_parallel", ParallelSetting(ParallelMode.AUTO_PARALLEL)),
    ("disabled", ParallelSetting(ParallelMode.DISABLED)),
])
def test_parallel_short_forms_mean_the_same_in_the_api_and_the_value_type(text, setting):
    assert ParallelSetting.parse(text) == setting
    assert ParallelBody.model_validate(text).to_setting() == setting


@pytest.mark.parametrize("text, field", [
    ("CUSTOM", "parallel"), ("CUSTOM:lots", "parallel"), ("AUTO:4", "parallel"), ("sometimes", "parallel"),
    ("1", "parallel.connections"), ("CUSTOM:300", "parallel.connections"),
])
def test_bad_parallel_short_forms_name_the_field(text, field):
    with pytest.raises(InvalidInput) as err:
        ParallelSetting.parse(text)
    assert err.value.field == field


def test_bandwidth_short_forms_mean_the_same_in_the_api_the_scenario_and_the_cli():
    custom = BandwidthSetting(BandwidthMode.CUSTOM, 5000)
    assert BandwidthBody.model_validate("CUSTOM:5000").to_setting() == custom
    assert BandwidthBody.model_validate("5000").to_setting() == custom
    assert scenario_bandwidth("custom:5000", "cluster.bandwidth") == custom
    assert parse_bandwidth("CUSTOM:5000") == parse_bandwidth("5000") == {"mode": "CUSTOM", "custom_mbps": 5000}
    assert scenario_bandwidth("hypervisor-default", "b") == BandwidthSetting(BandwidthMode.HYPERVISOR_DEFAULT)
    assert parse_bandwidth("hypervisor-default") == {"mode": "HYPERVISOR_DEFAULT", "custom_mbps": None}


@pytest.mark.parametrize("text", ["CUSTOM", "CUSTOM:", "CUSTOM:lots", "CUSTOM:-5", "0"])
def test_a_custom_bandwidth_without_a_positive_number_names_custom_mbps(text):
    with pytest.raises(InvalidInput) as err:
        parse_bandwidth(text)
    assert err.value.field == "bandwidth.custom_mbps"
