"""Destinations for many VMs at once (ferry.engine.destination.assign_destinations) follow the
single-migration rule, counting the VMs planned before."""
import random

import pytest

from ferry.engine.destination import Candidate, Leaving, assign_destinations, choose_destination


def _one_by_one(vms, candidates, exclude):
    """choose_destination per VM, each time with the counts and free memory after the ones before."""
    state = {c.name: c for c in candidates}
    out = {}
    for vm in vms:
        choice = choose_destination(list(state.values()), cluster=vm.cluster, source=vm.source,
                                    vm_memory_mib=vm.memory_mib, exclude=exclude)
        out[vm.name] = choice.host
        if choice.host is not None:
            c = state[choice.host]
            state[c.name] = Candidate(c.name, c.cluster, c.up, None if c.free_memory_mib is None
                                      else c.free_memory_mib - vm.memory_mib, c.running_migrations + 1)
    return out


@pytest.mark.parametrize("seed", range(20))
def test_same_choices_as_one_request_after_another(seed):
    rnd = random.Random(seed)
    candidates = [Candidate(f"h{i:02d}", rnd.choice(["a", "b"]), rnd.random() > 0.1,
                            rnd.choice([None, rnd.randrange(0, 16384)]), rnd.randrange(0, 3)) for i in range(30)]
    exclude = frozenset(c.name for c in candidates[:5])
    vms = [Leaving(f"vm{j}", rnd.choice(["a", "b"]), rnd.choice(candidates[:5]).name, rnd.choice([1024, 4096]))
           for j in range(60)]
    assert assign_destinations(vms, candidates, exclude=exclude) == _one_by_one(vms, candidates, exclude)


def test_spreads_a_drain_instead_of_piling_on_the_emptiest_host():
    candidates = [Candidate("src", "c", True, 0, 0), Candidate("big", "c", True, 100_000, 0),
                  Candidate("small", "c", True, 10_000, 0)]
    vms = [Leaving(f"vm{j}", "c", "src", 1024) for j in range(4)]
    got = assign_destinations(vms, candidates, exclude=frozenset({"src"}))
    assert sorted(got.values()) == ["big", "big", "small", "small"]


def test_nowhere_to_go_is_none_and_full_hosts_are_skipped():
    candidates = [Candidate("src", "c", True, 0, 0), Candidate("tiny", "c", True, 512, 0),
                  Candidate("down", "c", False, 99999, 0), Candidate("other", "d", True, 99999, 0)]
    got = assign_destinations([Leaving("vm", "c", "src", 1024)], candidates, exclude=frozenset({"src"}))
    assert got == {"vm": None}


def test_a_host_with_exactly_the_vms_memory_free_takes_it():
    # choose_destination's rule: refused only when free memory < the VM's memory
    candidates = [Candidate("src", "c", True, 0, 0), Candidate("exact", "c", True, 1024, 0)]
    vms = [Leaving("vm1", "c", "src", 1024), Leaving("vm2", "c", "src", 1)]
    assert assign_destinations(vms, candidates) == {"vm1": "exact", "vm2": None}


def test_a_vm_with_nowhere_to_go_does_not_stop_the_ones_after_it():
    candidates = [Candidate("src", "c", True, 0, 0), Candidate("h", "c", True, 2048, 0)]
    vms = [Leaving("big", "c", "src", 4096), Leaving("lost", "x", "src", 1), Leaving("small", "c", "src", 1024)]
    assert assign_destinations(vms, candidates) == {"big": None, "lost": None, "small": "h"}
