"""Starting the agent for real: logging, libvirt connection, event loop, HTTP server."""
from __future__ import annotations

import logging
import os
import signal
import threading

from ferry.agent.api import Agent
from ferry.agent.authz import libvirt_running_here
from ferry.agent.config import AgentConfig
from ferry.agent.dispatch import AccessControl
from ferry.agent.libvirt_edge import EventHub, LibvirtLink, LibvirtUnavailable, ReconnectingConnection, open_connection
from ferry.agent.server import make_server
from ferry.agent.vm_checks import check_request

log = logging.getLogger("ferry.agent")


def setup_logging(log_file: str | None, verbose: bool = False) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_file:
        handlers.append(logging.FileHandler(log_file))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def run_agent(config: AgentConfig) -> None:
    """Serves until SIGTERM/SIGINT."""
    import libvirt

    from ferry.agent.server import check_dev_address
    from ferry.pki.tls import server_context

    # Refuse a bad set-up before touching libvirt: plain HTTP only on loopback, else TLS files.
    tls = None
    if config.dev:
        check_dev_address(config.address)
    else:
        tls = server_context(config.tls_files)
    # The agent serves even while libvirtd is away: verbs answer libvirtUnavailable until the
    # link (re)connects; each new connection re-registers the event callbacks.
    link = LibvirtLink(libvirt, lambda: open_connection(config.libvirt_uri))
    conn = ReconnectingConnection(link)
    events = EventHub(conn, libvirt)
    agent = Agent(conn, libvirt, events, config)
    link.on_connect(events.reregister)
    link.on_connect(agent.on_libvirt_connected)
    link.start()
    limits = config.vm_limits  # roles: ferry.agent.authz; what reaches libvirt: ferry.agent.vm_checks
    domain_here = libvirt_running_here(conn, libvirt)

    def running_here(vm_id: object) -> bool:
        try:
            return domain_here(vm_id)
        except LibvirtUnavailable:      # libvirtd away: nothing is known to run here
            return False

    access = AccessControl(running_here=running_here,
                           check_params=lambda m, p: check_request(m, p, limits, resolve=os.path.realpath))
    server = make_server(config.address, config.port, agent.methods(), tls=tls, access=access,
                         read_timeout=config.read_timeout, max_per_client=config.max_connections_per_client)
    stop = threading.Event()

    def on_signal(signum, frame):  # noqa: ARG001
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    thread = threading.Thread(target=server.serve_forever, name="jsonrpc", daemon=True)
    thread.start()
    log.info("agent listening on %s://%s:%d/jsonrpc (libvirt %s%s%s)", "http" if config.dev else "https",
             config.address, config.port, config.libvirt_uri,
             ", dev mode: plain HTTP, no authentication" if config.dev else
             f", TLS with client certificates from {config.tls_files.ca}",
             ", old-agent mode" if config.old_agent else "")
    try:
        facts = agent.host_get_capabilities({})
        if "zerocopy_migrations" in facts:
            log.info("zero-copy migrations: %s", facts["zerocopy_migrations"])
    except Exception:  # noqa: BLE001 - capabilities are re-probed on request
        log.exception("probing capabilities failed")
    stop.wait()
    log.info("agent stopping")
    server.shutdown()
    link.stop()
    events.close()
    try:
        conn.close()
    except (libvirt.libvirtError, LibvirtUnavailable):
        pass
