"""The contract between the engine and the agent: what VM.migrate carries and what
VM.getMigrationStatus answers, as typed values with their wire (JSON) forms.

Both sides import this package; it imports neither of them (only `ferry.common`), so the engine
can plan exactly what the agent will do without standing on the agent's code:

- `migrate_params`: the VM.migrate parameters (Vdsm's names) as one frozen value;
- `schedule`: the convergence schedule's types and action names;
- `flags`: the libvirt flags and typed parameters those parameters lead to;
- `status`: a migration job's state and status.
"""
