"""Flag builder rules that the combination sweep in test_flags.py does not reach (facts §1)."""
from types import SimpleNamespace

import pytest

from ferry.protocol import flags as F
from ferry.protocol.adaptive import AdaptiveSpec
from ferry.protocol.flags import MigrationFlags, build_migration_flags
from ferry.protocol.migrate_params import MigrateParams

# A binding whose constants share no bit with one another and start above bit 0, so a stray
# starting value or a missing name shows in the number.
FAKE_BINDING = SimpleNamespace(VIR_MIGRATE_LIVE=2, VIR_MIGRATE_PEER2PEER=8, VIR_MIGRATE_TLS=64)


def test_flags_value_is_exactly_the_or_of_the_named_constants():
    assert MigrationFlags((F.LIVE, F.PEER2PEER), {}, "u").value(FAKE_BINDING) == 10
    assert MigrationFlags((F.TLS,), {}, "u").value(FAKE_BINDING) == 64
    assert MigrationFlags((), {}, "u").value(FAKE_BINDING) == 0


def test_adaptive_convergence_that_may_switch_to_postcopy_sets_the_postcopy_flag():
    """libvirt only allows migrateStartPostCopy on a migration started with VIR_MIGRATE_POSTCOPY."""
    params = MigrateParams(dst="h", adaptive=AdaptiveSpec(max_downtime_ms=500, allow_postcopy=True))
    assert F.POSTCOPY in build_migration_flags(params).names


def test_adaptive_convergence_with_parallel_connections_never_sets_postcopy():
    """QEMU does not support post-copy with multifd: the adaptive controller must not enable it."""
    params = MigrateParams(dst="h", parallel=4,
                           adaptive=AdaptiveSpec(max_downtime_ms=500, allow_postcopy=True))
    result = build_migration_flags(params)
    assert F.POSTCOPY not in result.names and F.PARALLEL in result.names


def test_adaptive_convergence_without_postcopy_leaves_the_flag_off():
    params = MigrateParams(dst="h", adaptive=AdaptiveSpec(max_downtime_ms=500, allow_postcopy=False))
    assert F.POSTCOPY not in build_migration_flags(params).names


def test_an_unknown_libvirt_transport_is_refused_by_name():
    with pytest.raises(ValueError, match="libvirt_transport must be tls or tcp, got 'ssh'"):
        build_migration_flags({"dst": "h"}, libvirt_transport="ssh")
