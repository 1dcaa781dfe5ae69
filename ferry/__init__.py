"""Ferry: a live-migration control plane for KVM hosts (oVirt Engine + Vdsm's roles)."""

__version__ = "0.1.0"
