"""The run matrix: parsing every option with clear errors, and the order runs go in."""
from __future__ import annotations

import pytest

from ferry.bench.matrix import (
    FERRY,
    IPERF,
    MIGRATE,
    VIRSH,
    Group,
    Matrix,
    Mode,
    build_matrix,
    fill_mib,
    parse_dirty,
    parse_mode,
    parse_modes,
    parse_sizes,
)
from ferry.common.errors import InvalidInput


def test_modes_and_their_migrate_params():
    assert parse_mode("plain") == Mode("plain")
    assert parse_mode("plain").migrate_params() == {} and parse_mode("plain").streams == 1
    p4 = parse_mode("parallel4")
    assert (p4.parallel, p4.zerocopy, p4.streams) == (4, False, 4)
    assert p4.migrate_params() == {"parallel": 4}
    z8 = parse_mode(" ZeroCopy8 ")
    assert z8.migrate_params() == {"parallel": 8, "zerocopy": True} and z8.streams == 8


@pytest.mark.parametrize("text", ["fast", "parallel", "zerocopy0", "parallel256", "plain4", ""])
def test_bad_modes_name_the_field(text):
    with pytest.raises(InvalidInput) as err:
        parse_modes(text)
    assert err.value.field == "modes"


@pytest.mark.parametrize("func,text,field", [
    (parse_sizes, "1024,abc", "sizes"), (parse_sizes, "128", "sizes"), (parse_sizes, "1024,,2048", "sizes"),
    (parse_sizes, "1024,1024", "sizes"), (parse_dirty, "-1", "dirty"), (parse_dirty, "99999", "dirty"),
])
def test_bad_numbers_name_the_field(func, text, field):
    with pytest.raises(InvalidInput) as err:
        func(text)
    assert err.value.field == field


def test_repeat_and_dirty_rate_checks():
    with pytest.raises(InvalidInput, match="repeat"):
        build_matrix("1024", "plain", "0", 0)
    with pytest.raises(InvalidInput, match="too much"):
        build_matrix("256", "plain", "64", 1)   # fills 96 MiB: at most 48 MiB/s


def test_fill_leaves_room_for_the_kernel():
    assert fill_mib(1024) == 864 and fill_mib(4096) == 3687 and fill_mib(256) == 96
    assert Group(1024, 32).fill_mib == 864


def test_steps_pair_ferry_and_virsh_with_the_raw_baseline_first_and_alternate_order():
    m = build_matrix("1024,4096", "plain,parallel4", "0,32", 2)
    steps = m.steps()
    assert len(m.groups) == 4 and m.migrations() == 4 * 2 * 2 * 2
    assert len(steps) == 4 * 2 * 2 * 3
    # groups run one after the other, each guest booted once
    order = [s.group for s in steps]
    assert order == sorted(order, key=lambda g: m.groups.index(g))
    first = steps[:3]
    assert [s.kind for s in first] == [IPERF, MIGRATE, MIGRATE]
    assert [s.driver for s in first[1:]] == [FERRY, VIRSH]
    second_repeat = [s for s in steps if s.group == m.groups[0] and s.repeat == 1 and s.kind == MIGRATE]
    assert [s.driver for s in second_repeat] == [VIRSH, FERRY, VIRSH, FERRY]
    # each iperf run uses its mode's stream count
    assert {s.mode.streams for s in steps if s.kind == IPERF} == {1, 4}


def test_without_baselines_only_ferry_runs():
    m = build_matrix("1024", "plain", "0", 3, baselines=False)
    assert [(s.kind, s.driver) for s in m.steps()] == [(MIGRATE, FERRY)] * 3


def test_labels_say_what_runs():
    m = Matrix((1024,), (parse_mode("zerocopy4"),), (32,), 1)
    assert [s.label for s in m.steps()] == ["1024MiB/dirty32 zerocopy4 #1 iperf3 x4",
                                            "1024MiB/dirty32 zerocopy4 #1 ferry",
                                            "1024MiB/dirty32 zerocopy4 #1 virsh"]
