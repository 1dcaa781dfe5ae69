"""The drain planner's rules (ferry.engine.drain_planner): limits, memory, order, no
destination, give-up after three hosts, pause, cancel, finish."""
from __future__ import annotations

import itertools

import pytest

from ferry.engine.drain_planner import (
    BLOCKED,
    DONE,
    FAILED,
    GONE,
    LARGEST,
    MIGRATING,
    QUEUED,
    SHORTEST,
    Abort,
    Block,
    DrainFacts,
    DrainVm,
    Drop,
    Finish,
    GiveUp,
    HostRoom,
    Start,
    ordered,
    plan_drain,
)


def vm(name, s=10.0, *, state=QUEUED, mem=256, tried=(), out=2, inc=2, mid=None, reason=None):
    return DrainVm(name, state, mem, s, frozenset(tried), out, inc, mid, reason)


def host(name, free=4096, *, up=True, incoming=0, arriving=0, why="host is not up"):
    return HostRoom(name, up, free, incoming, arriving, why)


def facts(vms, hosts=None, *, state="ACTIVE", order=SHORTEST, outgoing=0, abort=False):
    return DrainFacts(state, order, tuple(vms), tuple([host("h2"), host("h3")] if hosts is None else hosts), outgoing, abort)


def starts(step):
    return [(a.vm, a.destination) for a in step.of(Start)]


def test_shortest_first_is_the_default_order_and_unknown_forecasts_go_last():
    vms = [vm("big", 30), vm("small", 2), vm("unknown", None), vm("mid", 10)]
    assert [v.name for v in ordered(vms, SHORTEST)] == ["small", "mid", "big", "unknown"]
    assert [v.name for v in ordered(vms, LARGEST)] == ["big", "mid", "small", "unknown"]


def test_ties_in_the_forecast_go_by_name():
    assert [v.name for v in ordered([vm("b", 5), vm("a", 5)], SHORTEST)] == ["a", "b"]


def test_unknown_order_is_refused():
    with pytest.raises(ValueError, match="order"):
        ordered([vm("a")], "random")


def test_outgoing_limit_of_the_source_bounds_the_starts_and_the_rest_wait():
    step = plan_drain(facts([vm("a", 1), vm("b", 2), vm("c", 3)]))
    assert [s[0] for s in starts(step)] == ["a", "b"]
    assert step.waiting == ("c",)
    assert not step.of(Block)


def test_migrations_already_leaving_the_host_take_outgoing_slots():
    step = plan_drain(facts([vm("a", 1), vm("b", 2)], outgoing=1))
    assert [s[0] for s in starts(step)] == ["a"] and step.waiting == ("b",)
    assert starts(plan_drain(facts([vm("a")], outgoing=2))) == []


def test_each_vm_uses_its_own_plans_limit():
    step = plan_drain(facts([vm("one-at-a-time", 1, out=1), vm("b", 2, out=3)], outgoing=1))
    assert [s[0] for s in starts(step)] == ["b"]
    assert step.waiting == ("one-at-a-time",)


def test_incoming_limit_spreads_the_vms_over_the_hosts():
    step = plan_drain(facts([vm("a", 1, out=4, inc=1), vm("b", 2, out=4, inc=1), vm("c", 3, out=4, inc=1)]))
    assert starts(step) == [("a", "h2"), ("b", "h3")]
    assert step.waiting == ("c",)       # a slot, not a failure: no Block, no event
    assert not step.of(Block)


def test_incoming_migrations_of_others_count_against_the_limit():
    step = plan_drain(facts([vm("a", inc=1)], [host("h2", incoming=1), host("h3")]))
    assert starts(step) == [("a", "h3")]


def test_destination_with_fewest_incoming_then_most_free_memory_then_name():
    assert starts(plan_drain(facts([vm("a")], [host("h2", incoming=1), host("h3")]))) == [("a", "h3")]
    assert starts(plan_drain(facts([vm("a")], [host("h2", 1000), host("h3", 2000)]))) == [("a", "h3")]
    assert starts(plan_drain(facts([vm("a")], [host("h3", 1000), host("h2", 1000)]))) == [("a", "h2")]


def test_memory_sent_this_tick_and_still_arriving_is_reserved():
    hosts = [host("h2", 600), host("h3", 300)]
    step = plan_drain(facts([vm("a", 1, mem=256, out=4, inc=4), vm("b", 2, mem=256, out=4, inc=4),
                             vm("c", 3, mem=256, out=4, inc=4)], hosts))
    # h2 takes a (600 -> 344) then fewest incoming picks h3 for b (300 -> 44), c fits only on h2
    assert starts(step) == [("a", "h2"), ("b", "h3"), ("c", "h2")]
    step = plan_drain(facts([vm("a", mem=256)], [host("h2", 600, arriving=400), host("h3", 100)]))
    assert starts(step) == [] and "200 MiB < 256 MiB" in step.of(Block)[0].reason


def test_unknown_free_memory_does_not_exclude_a_host():
    assert starts(plan_drain(facts([vm("a", mem=8192)], [host("h2", None)]))) == [("a", "h2")]


def test_no_destination_blocks_the_vm_with_every_hosts_reason():
    hosts = [host("h2", up=False, why="host is MAINTENANCE"), host("h3", 100)]
    step = plan_drain(facts([vm("a")], hosts))
    (block,) = step.of(Block)
    assert block.vm == "a"
    assert "h2: host is MAINTENANCE" in block.reason and "h3: not enough free memory" in block.reason
    assert not step.of(Finish)


def test_a_blocked_vm_is_not_reported_again_for_the_same_reason_but_starts_when_a_host_appears():
    hosts = [host("h2", up=False)]
    reason = plan_drain(facts([vm("a")], hosts)).of(Block)[0].reason
    assert plan_drain(facts([vm("a", state=BLOCKED, reason=reason)], hosts)).actions == ()
    assert starts(plan_drain(facts([vm("a", state=BLOCKED, reason=reason)], [host("h2")]))) == [("a", "h2")]


def test_a_cluster_without_other_hosts_says_so():
    assert plan_drain(facts([vm("a")], [])).of(Block)[0].reason == "the cluster has no other host"


def test_hosts_already_tried_are_not_chosen_again():
    step = plan_drain(facts([vm("a", tried=["h2"])]))
    assert starts(step) == [("a", "h3")]
    step = plan_drain(facts([vm("a", tried=["h2", "h3"])]))
    assert "already tried" in step.of(Block)[0].reason


def test_three_failed_hosts_give_up_and_keep_the_host_preparing():
    step = plan_drain(facts([vm("a", tried=["h2", "h3", "h4"]), vm("b", state=DONE)],
                            [host("h2"), host("h3"), host("h4"), host("h5")]))
    (give_up,) = step.of(GiveUp)
    assert give_up.vm == "a" and "failed on 3 hosts" in give_up.reason
    assert starts(step) == [] and not step.of(Finish)


def test_a_failed_vm_keeps_the_drain_from_finishing():
    assert plan_drain(facts([vm("a", state=FAILED), vm("b", state=DONE)])).actions == ()


def test_every_vm_done_or_gone_finishes_in_maintenance():
    assert plan_drain(facts([vm("a", state=DONE), vm("b", state=GONE)])).actions == (Finish("maintenance"),)
    assert plan_drain(facts([])).actions == (Finish("maintenance"),)


def test_running_migrations_keep_the_drain_open():
    step = plan_drain(facts([vm("a", state=MIGRATING, mid="m1"), vm("b", state=DONE)]))
    assert step.actions == ()


def test_paused_drain_starts_nothing():
    assert plan_drain(facts([vm("a"), vm("b")], state="PAUSED")).actions == ()


def test_paused_drain_with_everything_done_still_finishes():
    assert plan_drain(facts([vm("a", state=DONE)], state="PAUSED")).actions == (Finish("maintenance"),)


def test_cancel_drops_queued_and_blocked_lets_running_finish():
    vms = [vm("q"), vm("b", state=BLOCKED), vm("r", state=MIGRATING, mid="m1"), vm("d", state=DONE)]
    step = plan_drain(facts(vms, state="CANCELLING"))
    assert step.actions == (Drop("q"), Drop("b"))


def test_cancel_with_abort_running_cancels_the_running_migrations():
    vms = [vm("q"), vm("r", state=MIGRATING, mid="m1")]
    step = plan_drain(facts(vms, state="CANCELLING", abort=True))
    assert step.actions == (Drop("q"), Abort("r", "m1"))


def test_cancel_finishes_cancelled_once_nothing_runs():
    step = plan_drain(facts([vm("d", state=DONE), vm("x", state="dropped")], state="CANCELLING"))
    assert step.actions == (Finish("cancelled"),)


@pytest.mark.parametrize("out_limit,in_limit,n_hosts,n_vms,outgoing", list(itertools.product(
    (1, 2, 3), (1, 2), (1, 2, 3), (0, 1, 4), (0, 1, 2))))
def test_limits_are_never_exceeded(out_limit, in_limit, n_hosts, n_vms, outgoing):
    hosts = [host(f"h{i}", incoming=i % 2) for i in range(n_hosts)]
    vms = [vm(f"v{i}", float(i), out=out_limit, inc=in_limit) for i in range(n_vms)]
    step = plan_drain(facts(vms, hosts, outgoing=outgoing))
    started = starts(step)
    assert outgoing + len(started) <= max(outgoing, out_limit)
    for h in hosts:
        assert h.incoming + sum(1 for _, d in started if d == h.name) <= max(h.incoming, in_limit)
    # every queued VM is started, waiting or blocked: none is forgotten
    assert len(started) + len(step.waiting) + len(step.of(Block)) == n_vms
