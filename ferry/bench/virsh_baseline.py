"""The bare-virsh baseline: the same migration as Ferry's, as one `virsh migrate` command (pure).

The command is built from the very flags and typed parameters Ferry's agent passes to
virDomainMigrateToURI3 (`ferry.protocol.flags.build_migration_flags`), so "same flags" holds by
construction; a flag or parameter virsh has no option for is an error, never silently dropped.
`destination_xml` is left out: the agent sends the domain's migratable XML, which is what
libvirt uses when none is given.
"""
from __future__ import annotations

from ferry.protocol import flags as F

FLAG_OPTIONS = {
    F.LIVE: "--live",
    F.PEER2PEER: "--p2p",
    F.TUNNELLED: "--tunnelled",
    F.PERSIST_DEST: "--persistent",
    F.COMPRESSED: "--compressed",
    F.ABORT_ON_ERROR: "--abort-on-error",
    F.AUTO_CONVERGE: "--auto-converge",
    F.POSTCOPY: "--postcopy",
    F.TLS: "--tls",
    F.PARALLEL: "--parallel",
    F.ZEROCOPY: "--zerocopy",
}
PARAM_OPTIONS = {
    F.PARAM_URI: "--migrateuri",
    F.PARAM_BANDWIDTH: "--bandwidth",
    F.PARAM_BANDWIDTH_POSTCOPY: "--postcopy-bandwidth",
    F.PARAM_PARALLEL_CONNECTIONS: "--parallel-connections",
    F.PARAM_TLS_DESTINATION: "--tls-destination",
    F.PARAM_GRAPHICS_URI: "--graphicsuri",
}
SAME_AS_DEFAULT = (F.PARAM_DEST_XML,)


def virsh_migrate_command(vm: str, source_uri: str, flags: F.MigrationFlags) -> list[str]:
    """argv of `virsh -c <source> migrate <options> <vm> <destination libvirt URI>`."""
    argv = ["virsh", "-q", "-c", source_uri, "migrate"]
    for name in flags.names:
        if name not in FLAG_OPTIONS:
            raise ValueError(f"virsh has no option for libvirt flag {name}")
        argv.append(FLAG_OPTIONS[name])
    for key, value in flags.typed_params.items():
        if key in SAME_AS_DEFAULT:
            continue
        if key not in PARAM_OPTIONS:
            raise ValueError(f"virsh has no option for migration parameter {key}")
        argv += [PARAM_OPTIONS[key], str(value)]
    argv += [vm, flags.destination_uri]
    return argv
