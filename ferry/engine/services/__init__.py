"""The engine's use cases, one module per group, over a unit of work (ferry.engine.db.Store):

- `planning`: choose a destination, plan a VM's migration (the dry run and the real one);
- `migrations`: accept a migration request (checks, plan, PENDING record), ask to cancel one;
- `vms`: start and stop VMs through their host's agent;
- `inventory`: clusters, hosts, VMs and policies as the REST API shows them;
- `forecasts`: a VM's migration forecast from live inventory;
- `bulk_planning`: plans for every VM of some hosts at once (starts nothing; not the drain).

The REST routes and the orchestrator call them; they call the repositories and the pure modules
(planner, destination, policies). Whoever opens the unit of work commits it.
"""
