import pytest

from ferry.engine.destination import MAX_HOSTS, Candidate, choose_destination, may_rerun


def cand(name, *, cluster="c1", up=True, free=4096, running=0):
    return Candidate(name, cluster, up, free, running)


def test_picks_host_with_fewest_running_migrations():
    hosts = [cand("h1"), cand("h2", running=2), cand("h3", running=1)]
    assert choose_destination(hosts, cluster="c1", source="h1", vm_memory_mib=1024).host == "h3"


def test_ties_go_to_most_free_memory_then_name():
    hosts = [cand("h2", free=2048), cand("h3", free=8192), cand("h4", free=8192)]
    assert choose_destination(hosts, cluster="c1", source="h1", vm_memory_mib=1024).host == "h3"


def test_never_the_source_nor_another_cluster():
    hosts = [cand("h1"), cand("h2", cluster="other")]
    choice = choose_destination(hosts, cluster="c1", source="h1", vm_memory_mib=1024)
    assert choice.host is None
    assert choice.reason() == "the cluster has no other host"


def test_rejections_say_why():
    hosts = [cand("h2", up=False), cand("h3", free=512), cand("h4")]
    choice = choose_destination(hosts, cluster="c1", source="h1", vm_memory_mib=1024, exclude={"h4"})
    assert choice.host is None
    assert dict(choice.rejected) == {
        "h2": "host is not up",
        "h3": "not enough free memory (512 MiB < 1024 MiB)",
        "h4": "already tried for this migration",
    }
    assert "h3: not enough free memory" in choice.reason()


def test_unknown_free_memory_does_not_exclude():
    hosts = [cand("h2", free=None)]
    assert choose_destination(hosts, cluster="c1", source="h1", vm_memory_mib=1024).host == "h2"


@pytest.mark.parametrize(
    "tried,on_source,cancelled,given,expected",
    [
        (1, True, False, False, True),
        (MAX_HOSTS - 1, True, False, False, True),
        (MAX_HOSTS, True, False, False, False),
        (1, False, False, False, False),
        (1, True, True, False, False),
        (1, True, False, True, False),
    ],
)
def test_rerun_rules(tried, on_source, cancelled, given, expected):
    assert may_rerun(tried_hosts=tried, vm_on_source=on_source, cancelled=cancelled, destination_given=given) is expected
