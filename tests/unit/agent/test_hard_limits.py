"""Vdsm's two hard limits as a pure decision (issue 13 item 7, facts §3 "Hard limits")."""
import pytest

from ferry.agent.hard_limits import (
    KUBEVIRT_COMPLETION_TIMEOUT_PER_GIB_S,
    KUBEVIRT_PROGRESS_TIMEOUT_S,
    MAX_TIME_LIMIT,
    PROGRESS_LIMIT,
    VDSM_MAX_TIME_PER_GIB_S,
    VDSM_PROGRESS_TIMEOUT_S,
    HardLimits,
    LowMark,
    decide,
    effective_limits,
    max_time_s,
    observe,
)

MiB = 1 << 20


def test_defaults_are_vdsms_and_kubevirts_pair_is_stated():
    """Vdsm config.py.in: migration_max_time_per_gib_mem 64, migration_progress_timeout 240."""
    assert (VDSM_MAX_TIME_PER_GIB_S, VDSM_PROGRESS_TIMEOUT_S) == (64, 240)
    assert HardLimits() == HardLimits(64, 240)
    assert (KUBEVIRT_COMPLETION_TIMEOUT_PER_GIB_S, KUBEVIRT_PROGRESS_TIMEOUT_S) == (150, 150)


@pytest.mark.parametrize("per_gib, memory_mib, expected", [
    (64, 1024, 64), (64, 2048, 128), (64, 512, 32), (64, 1, 1),   # rounded up to whole seconds
    (64, 1000, 63), (64, 1025, 65), (1, 1024, 1), (1, 1025, 2), (0, 4096, 0), (64, 0, 0),
])
def test_rule_max_time_is_per_gib_times_memory_rounded_up(per_gib, memory_mib, expected):
    assert max_time_s(per_gib, memory_mib) == expected


def test_observe_keeps_the_lowest_and_when_it_was_reached():
    mark = observe(LowMark(), 100 * MiB, 1.0)
    assert mark == LowMark(100 * MiB, 1.0)                      # the first sample is the first low
    assert observe(mark, 100 * MiB, 5.0) == mark                # equal is not a new low
    assert observe(mark, 150 * MiB, 6.0) == mark                # higher (a new pass) neither
    assert observe(mark, 99 * MiB, 7.0) == LowMark(99 * MiB, 7.0)
    assert observe(LowMark(0, 2.0), 0, 9.0) == LowMark(0, 2.0)


def d(limits=HardLimits(64, 240), *, memory_mib=1024, elapsed_s=10.0, mark=LowMark(10 * MiB, 0.0), now=10.0,
      postcopy=False):
    return decide(limits, memory_mib=memory_mib, elapsed_s=elapsed_s, mark=mark, now=now, postcopy=postcopy)


def test_rule_max_time_aborts_only_past_the_maximum():
    assert not d(elapsed_s=64.0, now=10.0).abort                # exactly the maximum: not yet
    v = d(elapsed_s=64.5, now=10.0)
    assert v.abort and v.limit == MAX_TIME_LIMIT
    assert "migration_max_time_per_gib_mem" in v.reason and "64 s" in v.reason and "1 GiB" in v.reason
    assert d(memory_mib=2048, elapsed_s=100.0).abort is False   # 2 GiB: 128 s allowed
    assert d(memory_mib=2048, elapsed_s=129.0).limit == MAX_TIME_LIMIT


def test_rule_progress_timeout_aborts_only_past_the_timeout_since_the_last_low():
    mark = LowMark(10 * MiB, 100.0)
    assert not d(mark=mark, now=340.0, elapsed_s=1.0).abort     # exactly 240 s: not yet
    v = d(mark=mark, now=340.5, elapsed_s=1.0)
    assert v.abort and v.limit == PROGRESS_LIMIT
    assert "migration_progress_timeout 240 s" in v.reason and "new low for 240.5 s" in v.reason
    assert "lowest 10 MiB" in v.reason


def test_no_sample_yet_means_no_progress_verdict():
    assert not d(mark=LowMark(), now=10_000.0, elapsed_s=1.0).abort


def test_rule_neither_limit_applies_once_postcopy_runs():
    assert not d(elapsed_s=10_000.0, mark=LowMark(1, 0.0), now=10_000.0, postcopy=True).abort


@pytest.mark.parametrize("limits, elapsed, now, expected", [
    (HardLimits(0, 240), 10_000.0, 10.0, None),                 # max time off
    (HardLimits(64, 0), 10.0, 10_000.0, None),                  # progress timeout off (Ferry: 0 = off)
    (HardLimits(0, 0), 10_000.0, 10_000.0, None),
    (HardLimits(64, 240), 10_000.0, 10_000.0, MAX_TIME_LIMIT),  # both over: max time is checked first
    (HardLimits(1, 1), 1.5, 1.0, MAX_TIME_LIMIT),
    (HardLimits(1000, 1), 5.0, 5.0, PROGRESS_LIMIT),
])
def test_limits_off_and_order(limits, elapsed, now, expected):
    v = d(limits, elapsed_s=elapsed, now=now)
    assert v.limit == expected and v.abort == (expected is not None)


@pytest.mark.parametrize("call, has_schedule, expected", [
    ((None, None), False, HardLimits(64, 240)),     # no schedule: the agent's limits (Vdsm)
    ((None, None), True, HardLimits(0, 0)),         # a schedule: Vdsm's monitor skips both
    ((10, None), True, HardLimits(10, 0)),          # the call's own values apply anyway
    ((None, 5), True, HardLimits(0, 5)),
    ((0, 0), False, HardLimits(0, 0)),              # the call turns them off
    ((7, 9), False, HardLimits(7, 9)),
])
def test_rule_vdsm_applies_its_config_limits_only_without_a_schedule(call, has_schedule, expected):
    got = effective_limits(HardLimits(64, 240), max_time_per_gib=call[0], progress_timeout=call[1],
                           has_schedule=has_schedule)
    assert got == expected


def test_a_stalling_history_ends_in_the_progress_abort():
    """Remaining data shrinks, then each pass re-dirties as much: the last low ages out."""
    limits, mark = HardLimits(0, 10), LowMark()
    history = [(0, 100), (1, 60), (2, 30), (3, 50), (5, 40), (8, 31), (12, 30), (13, 45)]
    verdicts = []
    for t, remaining in history:
        mark = observe(mark, remaining * MiB, float(t))
        verdicts.append(d(limits, elapsed_s=t, mark=mark, now=float(t)).abort)
    assert mark == LowMark(30 * MiB, 2.0)
    assert verdicts == [False] * 7 + [True]       # 13 - 2 = 11 s > 10 s


def test_rule_max_time_never_aborts_when_the_memory_is_unknown():
    """libvirt may report 0 memory for a domain it cannot size: the allowed time is then 0 s, which
    means 'no maximum known', not 'abort at once'."""
    assert max_time_s(64, 0) == 0
    assert not d(memory_mib=0, elapsed_s=10_000.0, now=10.0).abort
    assert not d(HardLimits(64, 0), memory_mib=0, elapsed_s=0.5, now=10.0).abort
