"""One repository per aggregate (policies, clusters, hosts, VMs, migrations, events, tokens).

Each persists its aggregate over the unit of work's session and hands out the frozen records of
ferry.engine.db.records; the unit of work (ferry.engine.db.store.Store) holds them all and commits.
"""
