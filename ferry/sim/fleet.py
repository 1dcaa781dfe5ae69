"""Which hosts and VMs a simulated fleet has, where each agent listens, and the inventory the
engine imports (pure; scale tests only: see ferry.sim).

Addresses are loopback only: host i (0-based) of lab L listens on 127.(50+L).(i // 250).(i % 250 + 2)
port 54321, so simulated fleets of different labs never meet each other or the lab's real hosts
(127.0.L.x). Hosts are split into contiguous blocks, one per process. VMs are spread round-robin
and their sizes and dirty rates vary deterministically with their index, so two runs of the same
size are the same fleet.
"""
from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass

from ferry.common.errors import InvalidInput
from ferry.sim.precopy import SimVm

PORT = 54321
HOSTS_PER_BLOCK = 250
MAX_HOSTS = HOSTS_PER_BLOCK * 256
HOST_MEMORY_MIB = 512 * 1024
HOST_CPUS = 64
LINK_MBPS = 10_000
SIM_KERNEL = "/var/lib/ferry/images/sim-vmlinuz"   # never booted: simulated guests have no kernel
_NS = uuidlib.UUID("5f0c1a51-7e2d-4b8e-9f3a-000000000018")
MEMORY_CHOICES_MIB = (1024, 2048, 4096)


@dataclass(frozen=True)
class SimHost:
    name: str
    address: str
    port: int
    process: int
    vms: tuple[SimVm, ...]
    memory_mib: int = HOST_MEMORY_MIB
    cpus: int = HOST_CPUS

    @property
    def agent_url(self) -> str:
        return f"https://{self.address}:{self.port}/"

    def to_wire(self) -> dict:
        return {"name": self.name, "address": self.address, "port": self.port, "process": self.process,
                "memory_mib": self.memory_mib, "cpus": self.cpus, "vms": [v.to_wire() for v in self.vms]}

    @classmethod
    def from_wire(cls, d: dict) -> SimHost:
        return cls(d["name"], d["address"], int(d["port"]), int(d["process"]),
                   tuple(SimVm.from_wire(v) for v in d["vms"]), int(d["memory_mib"]), int(d["cpus"]))


def host_name(lab: int, i: int) -> str:
    return f"sim{lab}-h{i + 1:04d}"


def host_address(lab: int, i: int) -> str:
    if not 0 <= lab <= 9:
        raise InvalidInput("lab", f"must be 0..9, got {lab}")
    if not 0 <= i < MAX_HOSTS:
        raise InvalidInput("hosts", f"at most {MAX_HOSTS} simulated hosts, got index {i}")
    return f"127.{50 + lab}.{i // HOSTS_PER_BLOCK}.{i % HOSTS_PER_BLOCK + 2}"


def sim_vm(lab: int, j: int) -> SimVm:
    """VM j of lab `lab`: 1, 2 or 4 GiB, 60% of it touched, dirtying 0..47 MiB/s at random."""
    name = f"sim{lab}-vm{j + 1:05d}"
    memory = MEMORY_CHOICES_MIB[j % len(MEMORY_CHOICES_MIB)]
    return SimVm(name=name, uuid=str(uuidlib.uuid5(_NS, name)), memory_mib=memory, vcpus=2,
                 touched_mib=round(memory * 0.6, 1), dirty_rate_mibs=float((j * 7) % 48), dirty_pattern="random")


def plan_fleet(hosts: int, vms: int, *, lab: int, processes: int, port: int = PORT) -> tuple[SimHost, ...]:
    if not 1 <= hosts <= MAX_HOSTS:
        raise InvalidInput("hosts", f"must be 1..{MAX_HOSTS}, got {hosts}")
    if vms < 0:
        raise InvalidInput("vms", f"must be >= 0, got {vms}")
    if not 1 <= processes <= hosts:
        raise InvalidInput("processes", f"must be 1..{hosts} (one host at least per process), got {processes}")
    placed: list[list[SimVm]] = [[] for _ in range(hosts)]
    for j in range(vms):
        placed[j % hosts].append(sim_vm(lab, j))
    return tuple(SimHost(host_name(lab, i), host_address(lab, i), port, i * processes // hosts, tuple(placed[i]))
                 for i in range(hosts))


def cluster_name(lab: int) -> str:
    return f"sim{lab}"


def inventory(fleet: tuple[SimHost, ...], *, lab: int) -> dict:
    """What the engine imports (ferry.sim.control.import_inventory): a cluster, hosts, VMs."""
    cluster = cluster_name(lab)
    return {
        "cluster": cluster,
        "hosts": [{"name": h.name, "cluster": cluster, "address": h.address, "agent_url": h.agent_url,
                   "link_speed_mbps": LINK_MBPS} for h in fleet],
        "vms": [{"name": v.name, "uuid": v.uuid, "cluster": cluster, "host": h.name, "memory_mib": v.memory_mib,
                 "vcpus": v.vcpus, "kernel": SIM_KERNEL} for h in fleet for v in h.vms],
    }
