"""Simulated hypervisor hosts, for scale tests of the engine only (issue 18).

A TEST DOUBLE, NEVER ON A REAL PATH: nothing in ferry.agent, ferry.engine, ferry.lab or the
CLI's real commands imports this package; only `ferry lab sim`, `ferry bench scale` and tests do
(tests/unit/test_layering.py checks it). A simulated host is the real agent (ferry.agent.api's
verbs, its JSON-RPC server, roles and checks, served over mutual TLS with a host certificate from
the engine CA) on top of `SimConnection`, a time-driven stand-in for the libvirt connection:
VMs, capabilities, stats, and migrations that take the time the pre-copy model
(ferry.forecast) says, reporting libvirt-like job stats and events.

- `precopy`: pure: one pre-copy pass from the model, and the job stats libvirt would report;
- `fleet`: pure: which hosts and VMs a simulated fleet has, where they listen, the inventory;
- `hypervisor`: SimConnection / SimDomain, the libvirt API subset the agent uses;
- `wire`: how a migration reaches a destination host simulated in another process;
- `certs`: host certificates from the engine CA (cached between runs);
- `host_process`: one process serving many simulated agents;
- `control`: start and stop the processes (`ferry lab sim`), import the inventory.
"""
