"""The host agents of a lab: start one inside each host, wait until it listens, restart it.

Split from ferry.lab.lab (the `Lab` class mixes this in) so each module stays one concept:
lab.py brings hosts (libvirtd, namespaces, links) up and down, this module runs the agent on
each of them, as on a real host: inside the host's mount, UTS and network namespaces, bound to
the host's address, talking to its libvirtd through the local unix socket. Processes are
tracked by pid plus start time (ferry.lab.procs), like everything else the lab starts.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ferry.common.errors import OperationFailed
from ferry.lab import procs
from ferry.lab import tls as lab_tls
from ferry.lab.plan import AGENT_PORT, HostPlan

Progress = Callable[[str], None]
AGENT_READY_TIMEOUT_S = 30.0


def _quiet(_msg: str) -> None:
    pass


def agent_available() -> bool:
    """Whether `python -m ferry.agent run ...` exists in this installation."""
    try:
        return importlib.util.find_spec("ferry.agent.__main__") is not None
    except (ImportError, ValueError):
        return False



class LabAgents:
    def agent_command(self, host: HostPlan, libvirtd_pid: int, extra_args: list[str]) -> list[str]:
        """The agent runs inside the host's mount + UTS + network namespaces (it sees the host's
        hostname, libvirt dirs and link), bound to the host's address, talking to the host's
        libvirtd locally through its unix socket (as on a real host; a cut link leaves it)."""
        return ["nsenter", f"--target={libvirtd_pid}", "--mount", "--uts", "--net", "--",
                sys.executable, "-m", "ferry.agent", "run", "--address", host.address,
                "--port", str(AGENT_PORT), "--libvirt-uri", "qemu:///system",
                "--log-file", str(host.dir / "agent.log"), *lab_tls.agent_mode_args(self.plan), *extra_args]

    def _start_agent(self, host: HostPlan, hs: dict, extra_args: list[str], progress: Progress) -> dict:
        return self._wait_agent(host, hs, self._spawn_agent(host, hs, extra_args), progress)

    def _spawn_agent(self, host: HostPlan, hs: dict, extra_args: list[str]) -> dict:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in [str(Path(__file__).resolve().parents[2]),
                                                        env.get("PYTHONPATH", "")] if p)
        env["FERRY_AGENT_IMAGES_DIRS"] = str(self.plan.images_dir)  # kernels only from the lab's images
        pid = procs.spawn(self.agent_command(host, hs["pid"], list(extra_args)),
                          host.dir / "agent.out", env=env)
        return {"pid": pid, "start": procs.start_time(pid), "extra_args": list(extra_args)}

    def _wait_agent(self, host: HostPlan, hs: dict, agent: dict, progress: Progress) -> dict:
        """Wait until the agent listens inside its host (read locally: works while cut off)."""
        pid = agent["pid"]
        deadline = time.monotonic() + AGENT_READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if not procs.alive(pid):
                agent["error"] = f"exited: {self._tail(host.dir / 'agent.out', 300)}"
                progress(f"{host.name}: agent failed to start: {agent['error']}")
                return agent
            if procs.same_netns(pid, hs["pid"]) and procs.listening_on(pid, AGENT_PORT):
                progress(f"{host.name}: agent listening on {host.agent_url} (pid {pid})")
                return agent
            time.sleep(0.1)
        agent["error"] = f"not listening on {host.agent_url} after {AGENT_READY_TIMEOUT_S:.0f} s"
        progress(f"{host.name}: agent {agent['error']}")
        return agent

    def restart_agent(self, host: object, extra_args: list[str] | tuple[str, ...] = (),
                      progress: Progress = _quiet) -> dict:
        """Stop the host's agent (by pid) and start it again with extra options (e.g. --old-agent)."""
        h = self.host(host)
        if not agent_available():
            raise OperationFailed("host agent not available: ferry.agent has no runnable module")
        with self._locked() as state:
            hs = state.get("hosts", {}).get(str(h.index))
            if not hs or not self._libvirtd_running(hs):
                raise OperationFailed(f"{h.name} is not up (run `ferry lab up`)")
            old = hs.get("agent") or {}
            if procs.is_same_process(old.get("pid"), old.get("start")):
                procs.stop(old["pid"], timeout=10)
            hs["agent"] = self._start_agent(h, hs, list(extra_args), progress)
            return dict(hs["agent"])
