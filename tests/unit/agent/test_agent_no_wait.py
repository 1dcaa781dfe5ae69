"""No verb waits behind a running migration (issue 11: Host.getCapabilities took 25.6 s on a
destination receiving a migration, VM.migrate to such a host blocked > 10 s)."""
import threading
import time

from tests.unit.agent.fake_libvirt import domain_xml
from tests.unit.agent.test_agent_api import VM, pair, rpc  # noqa: F401 - pair is a fixture

OTHER = "22222222-2222-3333-4444-555555555555"


def timed(agent, verb, params):
    t0 = time.monotonic()
    rpc(agent, verb, params)
    return time.monotonic() - t0


def test_every_verb_answers_at_once_while_a_migrating_domain_blocks_its_xml(pair):
    src, sconn, dst, dconn, _ = pair
    held = threading.Event()
    # Source side: an outgoing migration that runs until released; libvirt holds its live XML.
    outgoing = sconn.domains[VM]
    outgoing.migration_script = lambda dom: held.wait(10)
    rpc(src, "VM.migrate", {"vmID": VM, "params": {"dst": "127.0.1.3"}})
    deadline = time.monotonic() + 5
    while rpc(src, "VM.getMigrationStatus", {"vmID": VM})["state"] != "running" and time.monotonic() < deadline:
        time.sleep(0.02)
    outgoing.xml_blocker = held
    sconn.add_domain(domain_xml(name="other", uuid=OTHER))
    # Destination side: the incoming domain (expected through VM.migrationCreate), XML held.
    assert rpc(dst, "Host.getStats", {})["incomingVmMigrations"] == 1
    incoming = dconn.add_domain(domain_xml(), persistent=True)
    incoming.xml_blocker = held
    dconn.add_domain(domain_xml(name="other", uuid=OTHER))
    try:
        latencies = {}
        for agent, side in ((src, "src"), (dst, "dst")):
            for verb, params in (("Host.getCapabilities", {}), ("Host.getStats", {}), ("Host.getVMList", {}),
                                 ("VM.getStats", {"vmID": VM}), ("VM.getMigrationStatus", {"vmID": VM})):
                latencies[(side, verb)] = timed(agent, verb, params)
        # A second migration from the host that is receiving one (its own VM "other").
        latencies[("dst", "VM.migrate")] = timed(dst, "VM.migrate", {"vmID": OTHER, "params": {"dst": "127.0.1.9"}})
        slow = {k: round(v, 3) for k, v in latencies.items() if v >= 1.0}
        assert not slow, slow
    finally:
        held.set()
