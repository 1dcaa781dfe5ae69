"""The host's own verbs (Host.getCapabilities, Host.getStats, Host.getVMList) and what they report.

Why apart from the VM verbs: these describe the host (versions, zero-copy support, free memory,
how many migrations run each way, the VMs libvirt lists), never wait behind a migration, and
answer from what is kept (ferry.agent.host_caps for the capabilities, ferry.agent.kept for the
listing), so the engine's host monitor keeps hearing from a host whose libvirt is busy. Mixed
into `ferry.agent.api.Agent`, whose connection, slots, jobs and lock it uses.
"""
from __future__ import annotations

import os

from ferry.agent import capabilities as caps
from ferry.agent.vms import MIGRATION_DESTINATION, MIGRATION_SOURCE, domain_summary

AGENT_VERSION = "0.1.0"


class HostSide:
    def zerocopy_facts(self) -> caps.ZerocopyFacts:
        """Probed facts (static, once) plus the running VMs' hand-set hard limits. Domains
        migrating here or away are skipped: libvirt holds their XML until the migration ends."""
        if self._static_facts is None:
            self._static_facts = self._zerocopy_facts_fn()
        hard_limits = []
        for dom in self._domains():
            try:
                if self._migrating(dom.UUIDString()):
                    continue
                kib = caps.hard_limit_kib(dom.XMLDesc(0))
            except Exception:  # noqa: BLE001 - a domain vanishing mid-listing
                continue
            if kib is not None:
                hard_limits.append((dom.name(), kib))
        return caps.ZerocopyFacts(**{**self._static_facts.__dict__, "vms_with_hard_limit": tuple(hard_limits)})

    def _probe_zerocopy_facts(self) -> caps.ZerocopyFacts:
        return caps.probe_zerocopy_facts(self.conn, self.lv)

    def zerocopy_available(self) -> bool:
        if self.config.old_agent or self.config.zerocopy_disabled:
            return False
        return bool(self.capabilities.get().get("zerocopy_migrations"))

    def host_get_capabilities(self, params: dict) -> dict:
        """The kept answer (ferry.agent.host_caps): never waits for libvirt after the first."""
        return self.capabilities.get()

    def _compute_capabilities(self) -> dict:
        result = {
            "hostname": self.conn.getHostname(),
            "agentVersion": AGENT_VERSION,
            "libvirtVersion": caps.version_text(self.conn.getLibVersion()),
            "qemuVersion": caps.version_text(self.conn.getVersion()),
            "cpuCores": os.cpu_count(),
            "memSize": self.conn.getInfo()[1],
            "kvmEnabled": os.path.exists("/dev/kvm"),
            "migration": {"parallel": True, "postcopy": True, "maxOutgoing": self.outgoing.limit,
                          "maxIncoming": self.incoming_slots.limit},
        }
        if not self.config.old_agent:
            supported, checks = caps.evaluate_zerocopy(self.zerocopy_facts())
            if self.config.zerocopy_disabled:
                supported = False
                checks.insert(0, {"check": "admin_disabled", "result": caps.FAIL,
                                  "reason": f"zero-copy turned off on this host: {self.config.zerocopy_disabled}"})
            result["zerocopy_migrations"] = supported
            result["zerocopy_checks"] = checks
        return result

    def _domains(self) -> list:
        return list(self.conn.listAllDomains(self.lv.VIR_CONNECT_LIST_DOMAINS_ACTIVE))

    def _listing(self) -> dict:
        """The running domains as libvirt lists them, and free memory (may wait for libvirt)."""
        vms, active = [], 0
        for dom in self._domains():
            try:
                summary = domain_summary(self.lv, dom)
                active += dom.state()[0] == self.lv.VIR_DOMAIN_RUNNING
            except self.lv.libvirtError:   # gone meanwhile
                continue
            vms.append(summary)
        free_kib = 0
        try:
            free_kib = self.conn.getFreeMemory() // 1024
        except self.lv.libvirtError:
            pass
        return {"vms": vms, "active": active, "free_kib": free_kib}

    def _kept_listing(self) -> tuple[dict, float | None]:
        return self.kept.get("listing", self._listing)

    def host_get_stats(self, params: dict) -> dict:
        self._expire_incoming()
        listing, stale = self._kept_listing()
        with self._lock:
            outgoing = sum(1 for j in self.jobs.values() if j.active)
            incoming = sum(1 for i in self.incoming.values() if i.state == "running")
        result = {
            "incomingVmMigrations": incoming,
            "outgoingVmMigrations": outgoing,
            "vmCount": len(listing["vms"]),
            "vmActive": listing["active"],
            "memFree": listing["free_kib"] // 1024,
            "cpuCores": os.cpu_count(),
            "loadAvg": list(os.getloadavg()),
            "outgoingSlotsTaken": self.outgoing.taken,
            "incomingSlotsTaken": self.incoming_slots.taken,
        }
        if stale is not None:
            result["staleSeconds"] = round(stale, 3)   # Ferry: libvirt was late; the last answer
        return result

    def host_get_vm_list(self, params: dict) -> dict:
        listing, stale = self._kept_listing()
        vms = []
        for summary in listing["vms"]:
            summary = dict(summary)
            if self._running_job(summary["vmID"]):
                summary["status"] = MIGRATION_SOURCE
            elif self._migrating(summary["vmID"]):
                summary["status"] = MIGRATION_DESTINATION
            vms.append(summary)
        result = {"vms": vms}
        if stale is not None:
            result["staleSeconds"] = round(stale, 3)
        return result
