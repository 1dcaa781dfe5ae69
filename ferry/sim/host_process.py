"""One process serving many simulated agents (scale tests only: see ferry.sim).

Each simulated host is the real agent: `ferry.agent.api.Agent` over a SimConnection, behind
the real JSON-RPC server (`ferry.agent.server.make_server`: mutual TLS with the host's own
certificate, roles, checks, connection limits), on its own loopback address. What differs from
`ferry agent run` is only how the servers are driven: one selector thread accepts for all of
this process's servers (instead of one serve_forever thread each, which would poll 2,000 times
a second), and they share one read-deadline reaper. Connections are still handled one thread
each, by the server's own code.

    python -m ferry.sim.host_process PLAN.json INDEX
"""
from __future__ import annotations

import json
import logging
import os
import selectors
import signal
import sys
import threading
from pathlib import Path

import libvirt

from ferry.agent.api import Agent
from ferry.agent.authz import libvirt_running_here
from ferry.agent.capabilities import ZerocopyFacts
from ferry.agent.config import AgentConfig
from ferry.agent.conn_limits import Deadlines
from ferry.agent.dispatch import AccessControl
from ferry.agent.libvirt_edge import EventHub
from ferry.agent.server import make_server
from ferry.agent.vm_checks import check_request
from ferry.pki.tls import server_context
from ferry.sim import hypervisor, wire
from ferry.sim.certs import host_pki_dir
from ferry.sim.fleet import SimHost

log = logging.getLogger("ferry.sim")

# What a simulated host reports about zero-copy: a host where every check passes.
SIM_ZEROCOPY_FACTS = ZerocopyFacts(
    binding_has_flag=True, libvirt_version=hypervisor.LIB_VERSION,
    qemu_migration_capabilities=("xbzrle", "auto-converge", "postcopy-ram", "multifd", "zero-copy-send"),
    msg_zerocopy=True, memlock_hard_limit=None, can_raise_memlock=True, optmem_max=131072)


class SimHostServer:
    """One simulated host: its connection, its agent and its JSON-RPC server."""

    def __init__(self, host: SimHost, router: wire.Router, sim_dir: Path, deadlines: Deadlines):
        self.host = host
        self.conn = hypervisor.SimConnection(host.name, host.address, router=router,
                                             memory_mib=host.memory_mib, cpus=host.cpus)
        for vm in host.vms:
            self.conn.add_vm(vm)
        self.events = EventHub(self.conn, libvirt)
        self.events.register()
        config = AgentConfig(address=host.address, port=host.port, pki_dir=str(host_pki_dir(sim_dir, host.name)),
                             libvirt_uri=f"sim://{host.address}/system")
        self.agent = Agent(self.conn, libvirt, self.events, config, zerocopy_facts=lambda: SIM_ZEROCOPY_FACTS)
        limits = config.vm_limits
        access = AccessControl(running_here=libvirt_running_here(self.conn, libvirt),
                               check_params=lambda m, p: check_request(m, p, limits, resolve=os.path.realpath))
        self.server = make_server(host.address, host.port, self.agent.methods(),
                                  tls=server_context(config.tls_files), access=access,
                                  read_timeout=config.read_timeout, max_per_client=config.max_connections_per_client)
        self.server.deadlines = deadlines


def serve(hosts: list[SimHost], router: wire.Router, sim_dir: Path) -> list[SimHostServer]:
    """Every host's server, bound and listening (accept_loop then accepts for all of them)."""
    deadlines = Deadlines()
    servers = []
    for h in hosts:
        s = SimHostServer(h, router, sim_dir, deadlines)
        router.local[h.address] = s.conn
        servers.append(s)
    return servers


def accept_loop(servers: list[SimHostServer], stop: threading.Event) -> None:
    sel = selectors.DefaultSelector()
    for s in servers:
        sel.register(s.server.socket, selectors.EVENT_READ, s.server)
    while not stop.is_set():
        for key, _ in sel.select(timeout=0.5):
            key.data._handle_request_noblock()  # socketserver's accept + process_request
    sel.close()
    for s in servers:
        s.server.server_close()


def main(argv: list[str]) -> int:
    plan_path, index = Path(argv[0]), int(argv[1])
    plan = json.loads(plan_path.read_text())
    run_dir, sim_dir = plan["run_dir"], Path(plan["sim_dir"])
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        filename=os.path.join(run_dir, f"proc-{index}.log"))
    hosts = [SimHost.from_wire(h) for h in plan["hosts"]]
    mine = [h for h in hosts if h.process == index]
    router = wire.Router(remote={h.address: wire.socket_path(run_dir, h.process) for h in hosts if h.process != index})
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    servers = serve(mine, router, sim_dir)
    wire_server = wire.WireServer(wire.socket_path(run_dir, index), router.local)
    wire_server.start()
    ready = Path(run_dir) / f"proc-{index}.ready"
    ready.write_text(f"{os.getpid()} {len(servers)}\n")
    log.warning("serving %d simulated hosts", len(servers))
    try:
        accept_loop(servers, stop)
    finally:
        wire_server.shutdown()
        wire_server.server_close()
        ready.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
