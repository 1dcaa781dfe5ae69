"""Who may call which agent verb: the role in the caller's certificate, checked on every request.

Every certificate from the engine CA passes the TLS handshake, so the handshake alone would let
one compromised host command every agent. The role (a SAN URI, see ferry.pki.layout) narrows it:

- the engine's certificate (ferry:role/engine) may call every verb;
- a host's agent certificate (ferry:role/host/<name>) may only do what a migration source asks
  of its destination (ferry.agent.migration: `VM.migrationCreate`, and on failure
  `VM.destroy` with incomingOnly), and only for a VM it is migrating:
    * VM.migrationCreate: the source names itself (its certificate) and the VM (vmID); refused
      when that VM is a domain running here (then the caller cannot be migrating it to us);
      when it succeeds, this host is remembered as the VM's migration source;
    * VM.destroy: only with incomingOnly=true (which drops a pending incoming VM, never a
      running one) and only from the host remembered for that VM;
- a certificate with no role (or several) may call nothing; so may a libvirt certificate.

`decide` is pure; `Grants` is the small memory of "which host created which incoming VM".
The dev mode has no TLS and therefore no caller: it is unauthenticated by design (loopback only).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from ferry.pki.layout import ENGINE_ROLE, HOST_ROLE, Role, role_of

MIGRATION_CREATE = "VM.migrationCreate"
DESTROY = "VM.destroy"
MAX_GRANTS = 4096  # remembered migration sources; the oldest are forgotten first


@dataclass(frozen=True)
class Caller:
    """Who sent a request: its role (None: none usable) and a printable subject."""

    role: Role | None
    subject: str


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""
    remember_source: bool = False   # on success, remember the caller as the VM's migration source


ALLOW = Decision(True)
_SHORT = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU"}


def caller_from_peercert(peer: dict | None) -> Caller:
    """The caller of a TLS connection from `ssl.SSLSocket.getpeercert()`."""
    peer = peer or {}
    uris = [value for kind, value in peer.get("subjectAltName", ()) if kind == "URI"]
    role = role_of(uris)
    if role is not None:
        return Caller(role, role.subject)
    subject = ",".join(f"{_SHORT.get(k, k)}={v}" for rdn in peer.get("subject", ()) for k, v in rdn)
    return Caller(None, subject or "an unnamed certificate")


def decide(caller: Caller, method: str, params: object, *, running_here: bool, source: str | None) -> Decision:
    """May `caller` call `method` with `params`?

    `running_here`: the VM named by params.vmID is a domain running on this host;
    `source`: the host remembered as that VM's migration source (None: none).
    """
    role = caller.role
    if role is None:
        return Decision(False, "its certificate carries no Ferry role (enroll it again: ferry host enroll, "
                               "or the engine's with ferry pki init)")
    if role.kind == ENGINE_ROLE:
        return ALLOW
    if role.kind != HOST_ROLE:
        return Decision(False, f"unknown role {role.kind!r}")
    vm_id = params.get("vmID") if isinstance(params, dict) else None
    if method == MIGRATION_CREATE:
        if running_here:
            return Decision(False, f"VM {vm_id} is running on this host, so {role.subject} is not migrating it")
        return Decision(True, remember_source=True)
    if method == DESTROY:
        if not isinstance(params, dict) or params.get("incomingOnly") is not True:
            return Decision(False, "a host may only drop an incoming migration it created (incomingOnly=true)")
        if source != role.host:
            return Decision(False, f"the incoming migration of VM {vm_id} was not created by {role.subject}")
        return ALLOW
    return Decision(False, f"only the engine may call it; a host may call only {MIGRATION_CREATE} and "
                           f"{DESTROY} (incomingOnly) for a VM it migrates here")


class Grants:
    """VM id -> the host whose VM.migrationCreate for it last succeeded here (thread-safe, bounded).

    A stale entry grants nothing more: VM.destroy with incomingOnly acts only on a pending incoming
    migration, and each new VM.migrationCreate for the VM replaces the entry."""

    def __init__(self, limit: int = MAX_GRANTS):
        self._limit = limit
        self._lock = threading.Lock()
        self._sources: OrderedDict[str, str] = OrderedDict()

    def source(self, vm_id: object) -> str | None:
        with self._lock:
            return self._sources.get(vm_id) if isinstance(vm_id, str) else None

    def remember(self, vm_id: str, host: str) -> None:
        with self._lock:
            self._sources.pop(vm_id, None)
            self._sources[vm_id] = host
            while len(self._sources) > self._limit:
                self._sources.popitem(last=False)


def libvirt_running_here(conn, lv) -> Callable[[object], bool]:  # noqa: ANN001
    """running_here(vm_id) over a libvirt connection: an active domain with that UUID exists."""
    def running_here(vm_id: object) -> bool:
        if not isinstance(vm_id, str):
            return False
        try:
            return bool(conn.lookupByUUIDString(vm_id).isActive())
        except lv.libvirtError:
            return False
    return running_here
