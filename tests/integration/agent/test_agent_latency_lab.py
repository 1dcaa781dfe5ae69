"""Every verb answers within 1 s during an incoming and an outgoing migration (issue 11).

Measured on the real lab: while a bandwidth-capped migration runs from host 1 to host 2,
threads call each verb on both agents over and over and keep the slowest answer of each, as
the caller sees it (TLS handshake and all) and as the agent itself took it (it logs every verb
that took it over 0.25 s). The assertion is on the agent's own time -- that is what waiting
behind a migration would show; the caller's time on this shared 2-core machine also holds the
scheduling of busy TCG guests, and is reported beside it. The numbers are printed and written
to $FERRY_LATENCY_REPORT (if set) as JSON.
"""
from __future__ import annotations

import json
import os
import re
import threading
import time

import pytest

pytestmark = pytest.mark.lab

GUEST = "agt-lat"
SECOND = "agt-lat2"
LIMIT_S = 1.0


@pytest.fixture(scope="module")
def guests(agent_lab):
    lab = agent_lab.lab
    for name in (GUEST, SECOND):
        lab.destroy_guest(name)
    first = lab.boot_guest(agent_lab.h1, GUEST, memory_mib=512, fill_mib=128, dirty_mib_s=8)
    second = lab.boot_guest(agent_lab.h2, SECOND, memory_mib=256, fill_mib=16, dirty_mib_s=0)
    yield first.spec.effective_uuid, second.spec.effective_uuid
    for name in (GUEST, SECOND):
        lab.destroy_guest(name)


def test_every_verb_answers_within_a_second_during_a_migration(agent_lab, guests):
    vm, second = guests
    src, dst = agent_lab.h1, agent_lab.h2
    assert agent_lab.where(vm) == src and agent_lab.where(second) == dst
    verbs = [("Host.getCapabilities", {}), ("Host.getStats", {}), ("Host.getVMList", {}),
             ("VM.getStats", {"vmID": vm}), ("VM.getMigrationStatus", {"vmID": vm})]
    worst: dict[str, float] = {}
    counts: dict[str, int] = {}
    errors: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def hammer(host, side):
        client = agent_lab.agent(host)
        arrived = False   # the destination knows the VM only once the incoming domain exists
        while not stop.is_set():
            for verb, params in verbs + ([("VM.migrateChangeParams", {"vmID": vm, "params": {"maxBandwidth": 12}})]
                                         if side == "source" else []):
                t0 = time.monotonic()
                try:
                    client.call(verb, params)
                    arrived = arrived or (side == "destination" and verb.startswith("VM."))
                except Exception as exc:  # noqa: BLE001 - recorded and asserted below
                    name = getattr(exc, "name", None)
                    ended = side == "source" and name in ("noVM", "migCancelErr")  # the VM has left
                    # Before libvirt has created the incoming domain the destination rightly
                    # says noVM; once it has answered for the VM, noVM there is an error.
                    not_yet = side == "destination" and name == "noVM" and not arrived
                    if not (ended or not_yet):
                        errors.append(f"{side} {verb}: {exc}")
                took = time.monotonic() - t0
                with lock:
                    key = f"{side} {verb}"
                    worst[key] = max(worst.get(key, 0.0), took)
                    counts[key] = counts.get(key, 0) + 1
            time.sleep(0.05)

    logs = {side: host.dir / "agent.log" for host, side in ((src, "source"), (dst, "destination"))}
    log_offsets = {side: path.stat().st_size for side, path in logs.items()}
    agent_lab.migrate(src, vm, maxBandwidth=12, maxTimePerGiB=0)
    threads = [threading.Thread(target=hammer, args=(h, side), daemon=True)
               for h, side in ((src, "source"), (dst, "destination"))]
    for t in threads:
        t.start()
    migrate_second = None
    running_seen = time.monotonic()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        status = agent_lab.agent(src).call("VM.getMigrationStatus", {"vmID": vm})
        if status["state"] == "running" and migrate_second is None and status["dataProcessed"] > 8 << 20:
            # VM.migrate to the host that is receiving: it must answer at once, too.
            t0 = time.monotonic()
            agent_lab.agent(dst).call("VM.migrate", {"vmID": second, "params": {
                "dst": f"{agent_lab.lab.host(3).address}:54321", "dstqemu": agent_lab.lab.host(3).address,
                "maxBandwidth": 0}})
            migrate_second = time.monotonic() - t0
            running_seen = time.monotonic()
        if status["state"] in ("succeeded", "failed", "cancelled", "aborted"):
            break
        time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(10)
    during = time.monotonic() - running_seen
    assert status["state"] == "succeeded", status
    worst["destination VM.migrate (while receiving)"] = migrate_second or 0.0
    in_agent: dict[str, float] = {}
    for side, path in logs.items():
        with open(path, errors="replace") as fh:
            fh.seek(log_offsets[side])
            for m in re.finditer(r"slow verb: (\S+) took ([0-9.]+) s", fh.read()):
                key = f"{side} {m.group(1)}"
                in_agent[key] = max(in_agent.get(key, 0.0), float(m.group(2)))
    report = {"limit_s": LIMIT_S, "migration_s": round(status["endedAt"] - status["startedAt"], 1),
              "max_latency_s": {k: round(v, 3) for k, v in sorted(worst.items())},
              "in_agent_over_0.25_s": in_agent, "calls": counts, "loadavg": os.getloadavg()}
    print("\n" + json.dumps(report, indent=2))
    if os.environ.get("FERRY_LATENCY_REPORT"):
        with open(os.environ["FERRY_LATENCY_REPORT"], "w") as fh:
            json.dump(report, fh, indent=2)
    assert migrate_second is not None, "the second migration was never sent"
    assert during > 3 and min(counts.values()) >= 3, report      # measured during a real migration
    assert not errors, errors[:5]
    slow = {k: v for k, v in in_agent.items() if v >= LIMIT_S}
    assert not slow, report
    final = agent_lab.wait_final(dst, second, timeout=120)
    assert final["state"] == "succeeded", final
