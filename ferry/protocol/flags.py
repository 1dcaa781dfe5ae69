"""The libvirt flags and typed parameters of one migration, from VM.migrate's parameters.

Pure: names only (the agent turns them into numbers with the `libvirt` binding; the engine's
planner shows them in a plan, exactly as the agent will pass them). Rules are
ovirt-migration-facts §1; `zerocopy` adds VIR_MIGRATE_ZEROCOPY only where the agent verified
zero-copy, otherwise a note says why not and the migration goes on without it. Known conflicts
that libvirt or QEMU will refuse are not silently fixed (Vdsm's contract: the caller sends a
sane combination) but listed in `warnings`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ferry.protocol.migrate_params import MigrateParams, url_host

LIVE = "VIR_MIGRATE_LIVE"
PEER2PEER = "VIR_MIGRATE_PEER2PEER"
TUNNELLED = "VIR_MIGRATE_TUNNELLED"
PERSIST_DEST = "VIR_MIGRATE_PERSIST_DEST"
COMPRESSED = "VIR_MIGRATE_COMPRESSED"
ABORT_ON_ERROR = "VIR_MIGRATE_ABORT_ON_ERROR"
AUTO_CONVERGE = "VIR_MIGRATE_AUTO_CONVERGE"
POSTCOPY = "VIR_MIGRATE_POSTCOPY"
TLS = "VIR_MIGRATE_TLS"
PARALLEL = "VIR_MIGRATE_PARALLEL"
ZEROCOPY = "VIR_MIGRATE_ZEROCOPY"
# Order in which names are listed (libvirt's bit order).
FLAG_ORDER = (LIVE, PEER2PEER, TUNNELLED, PERSIST_DEST, COMPRESSED, ABORT_ON_ERROR, AUTO_CONVERGE,
              POSTCOPY, TLS, PARALLEL, ZEROCOPY)

# libvirt's typed parameter names (VIR_MIGRATE_PARAM_*).
PARAM_BANDWIDTH = "bandwidth"
# Post-copy's own cap (MiB/s). QEMU's max-postcopy-bandwidth defaults to unlimited, so a
# migration that switched would leave the cap behind and fill the link; Ferry holds it to the
# same cap (measured: a 1 GiB guest capped at 80 MiB/s finished its post-copy at ~170 MiB/s).
PARAM_BANDWIDTH_POSTCOPY = "bandwidth.postcopy"
PARAM_PARALLEL_CONNECTIONS = "parallel.connections"
PARAM_URI = "migrate_uri"
PARAM_GRAPHICS_URI = "graphics_uri"
PARAM_TLS_DESTINATION = "tls.destination"
PARAM_DEST_XML = "destination_xml"

NOTE_ZEROCOPY_UNAVAILABLE = "zero-copy not available, not enabling"


@dataclass(frozen=True)
class MigrationFlags:
    names: tuple[str, ...]
    typed_params: dict
    destination_uri: str
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    def value(self, libvirt_module) -> int:
        """The flags as the binding's number (names resolved with the binding's constants)."""
        total = 0
        for name in self.names:
            total |= getattr(libvirt_module, name)
        return total

    def to_dict(self) -> dict:
        return {"flags": list(self.names), "typed_params": dict(self.typed_params),
                "destination_uri": self.destination_uri, "notes": list(self.notes),
                "warnings": list(self.warnings)}


def build_migration_flags(params: dict | MigrateParams, *, zerocopy_available: bool = True,
                          libvirt_transport: str = "tls", graphics_protocol: str | None = None,
                          knows_zerocopy: bool = True) -> MigrationFlags:
    """VM.migrate params (wire dict or parsed) -> flags, typed params and destination URI.

    `libvirt_transport`: how the source libvirtd reaches the destination's ("tls" in
    production, "tcp" in dev/lab mode). `graphics_protocol` ("vnc"/"spice"): the VM's console,
    used with consoleAddress for graphics_uri.
    """
    if not isinstance(params, MigrateParams):
        params, _ = MigrateParams.from_wire(params, knows_zerocopy=knows_zerocopy)
    if libvirt_transport not in ("tls", "tcp"):
        raise ValueError(f"libvirt_transport must be tls or tcp, got {libvirt_transport!r}")
    p = params
    names = {LIVE, PEER2PEER, PERSIST_DEST}
    typed: dict = {}
    notes: list[str] = []
    warnings: list[str] = []
    host = p.dst_host

    if p.tunneled:
        names.add(TUNNELLED)
    else:
        typed[PARAM_URI] = f"tcp://{url_host(p.dstqemu or host)}"
    if p.abort_on_error:
        names.add(ABORT_ON_ERROR)
    if p.compressed:
        names.add(COMPRESSED)
    if p.auto_converge:
        names.add(AUTO_CONVERGE)
    if p.encrypted:
        names.add(TLS)
        typed[PARAM_TLS_DESTINATION] = host
    if p.parallel:
        names.add(PARALLEL)
        typed[PARAM_PARALLEL_CONNECTIONS] = p.parallel
        if p.tunneled:
            warnings.append("libvirt refuses parallel connections with a tunnelled migration")
    if p.zerocopy:
        if zerocopy_available:
            names.add(ZEROCOPY)
            if not p.parallel:
                warnings.append("zero-copy is only available for parallel migration: libvirt will refuse it")
            if p.encrypted:
                warnings.append("QEMU refuses zero-copy with TLS encryption")
            if p.compressed:
                warnings.append("QEMU refuses zero-copy with compression")
        else:
            notes.append(NOTE_ZEROCOPY_UNAVAILABLE)
    if p.schedule is not None and p.schedule.has_postcopy:
        names.add(POSTCOPY)
        if p.parallel:
            warnings.append("post-copy with parallel connections is not supported by QEMU")
    if p.adaptive is not None and p.adaptive.allow_postcopy and not p.parallel:
        names.add(POSTCOPY)   # Ferry's adaptive convergence may switch to post-copy
    if p.bandwidth_mibs:
        typed[PARAM_BANDWIDTH] = p.bandwidth_mibs
        if POSTCOPY in names:
            typed[PARAM_BANDWIDTH_POSTCOPY] = p.bandwidth_mibs
    if p.console_address:
        if graphics_protocol:
            typed[PARAM_GRAPHICS_URI] = f"{graphics_protocol}://{url_host(p.console_address)}"
        else:
            notes.append("consoleAddress given but the VM has no graphics console; not sending graphics_uri")

    ordered = tuple(n for n in FLAG_ORDER if n in names)
    return MigrationFlags(ordered, typed, f"qemu+{libvirt_transport}://{url_host(host)}/system",
                          tuple(notes), tuple(warnings))
