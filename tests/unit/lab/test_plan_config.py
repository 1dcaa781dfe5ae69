"""Address and network plan, directory layout, libvirtd/qemu config generation, host start command."""
from pathlib import Path

import pytest

from ferry.common.errors import InvalidInput
from ferry.lab.config import libvirtd_conf, qemu_conf
from ferry.lab.lab import Lab
from ferry.lab.plan import LabPlan, lab_id_from_env
from ferry.lab.procs import libvirtd_command

ROOT = Path("/r")


def test_lab0_addresses_names_and_uris():
    hosts = LabPlan(0, ROOT).hosts(3)
    assert [h.address for h in hosts] == ["198.18.0.2", "198.18.0.3", "198.18.0.4"]
    assert [h.name for h in hosts] == ["ferry-h1", "ferry-h2", "ferry-h3"]
    assert hosts[0].uri == "qemu+tcp://198.18.0.2/system"
    assert hosts[0].agent_url == "https://198.18.0.2:54321/"
    assert hosts[1].dir == Path("/r/lab0/h2")
    # The lab's own path to libvirtd: the host's unix socket, seen from outside the host.
    assert hosts[0].local_uri == "qemu+unix:///system?socket=/r/lab0/h1/run/libvirt-sock"


def test_lab_network_plan_names_fit_and_addresses_stay_in_the_lab_subnet():
    plan = LabPlan(6, ROOT)
    assert (plan.subnet, plan.bridge, plan.bridge_address) == ("198.18.6.0/24", "ferry6br", "198.18.6.1")
    hosts = plan.hosts(4)
    assert [h.netns for h in hosts] == ["ferry6-h1", "ferry6-h2", "ferry6-h3", "ferry6-h4"]
    assert [h.veth for h in hosts] == ["ferry6h1", "ferry6h2", "ferry6h3", "ferry6h4"]
    assert all(len(name) <= 15 for name in [plan.bridge, *(h.veth for h in hosts)])  # IFNAMSIZ
    import ipaddress
    net = ipaddress.ip_network(plan.subnet)
    addrs = [ipaddress.ip_address(a) for a in [plan.bridge_address, *(h.address for h in hosts)]]
    assert all(a in net and not a.is_global for a in addrs) and len(set(addrs)) == 5


def test_other_labs_do_not_collide():
    a, b = LabPlan(0, ROOT).hosts(4), LabPlan(3, ROOT).hosts(4)
    assert [h.address for h in b] == ["198.18.3.2", "198.18.3.3", "198.18.3.4", "198.18.3.5"]
    assert b[0].name == "ferry3-h1"
    assert not {h.address for h in a} & {h.address for h in b}
    assert not {h.host_uuid for h in a} & {h.host_uuid for h in b}
    assert not {h.dir for h in a} & {h.dir for h in b}
    assert not {h.netns for h in a} & {h.netns for h in b}
    assert not {h.veth for h in a} & {h.veth for h in b}
    assert LabPlan(0, ROOT).bridge != LabPlan(3, ROOT).bridge
    assert LabPlan(0, ROOT).subnet != LabPlan(3, ROOT).subnet


def test_host_uuids_are_stable_and_distinct():
    assert LabPlan(0, ROOT).host(1).host_uuid == LabPlan(0, ROOT).host(1).host_uuid
    assert len({h.host_uuid for h in LabPlan(0, ROOT).hosts(4)}) == 4


@pytest.mark.parametrize("bad", [-1, 10, "1", True])
def test_lab_id_range(bad):
    with pytest.raises(InvalidInput) as info:
        LabPlan(bad, ROOT)
    assert info.value.field == "lab_id"


def test_lab_id_from_env():
    assert lab_id_from_env({}) == 0
    assert lab_id_from_env({"FERRY_LAB_ID": "4"}) == 4
    for bad in ("x", "10", "-1"):
        with pytest.raises(InvalidInput):
            lab_id_from_env({"FERRY_LAB_ID": bad})


@pytest.mark.parametrize("n", [0, 5])
def test_host_count_range(n):
    with pytest.raises(InvalidInput) as info:
        LabPlan(0, ROOT).hosts(n)
    assert info.value.field == "hosts"


def test_resolve_host_by_index_name_address_or_plan():
    plan = LabPlan(2, ROOT)
    h2 = plan.host(2)
    for ref in (2, "2", "ferry2-h2", "198.18.2.3", h2):
        assert plan.resolve(ref) == h2
    with pytest.raises(InvalidInput) as info:
        plan.resolve("ferry-h2")  # a lab-0 name
    assert info.value.field == "host"
    with pytest.raises(InvalidInput):
        plan.resolve(LabPlan(0, ROOT).host(2))


def test_outside_paths_of_host_files():
    h = LabPlan(0, ROOT).host(1)
    assert h.outside("/var/log/libvirt/qemu/vm-serial.log") == Path("/r/lab0/h1/log/qemu/vm-serial.log")
    assert h.outside("/etc/libvirt/qemu.conf") == Path("/r/lab0/h1/etc/qemu.conf")
    with pytest.raises(InvalidInput):
        h.outside("/var/log/libvirtX/a")


def parse_conf(text):
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.split(" = ", 1)
            out[k] = v
    return out


def test_libvirtd_conf_listens_on_host_address_with_own_uuid():
    h = LabPlan(1, ROOT).host(2)
    conf = parse_conf(libvirtd_conf(h))
    assert conf["listen_tcp"] == "1" and conf["listen_tls"] == "0"
    assert conf["listen_addr"] == '"198.18.1.3"'
    assert conf["auth_tcp"] == '"none"'
    assert conf["host_uuid"] == f'"{h.host_uuid}"'
    assert "file:/var/log/libvirt/libvirtd.log" in conf["log_outputs"]


def test_qemu_conf_runs_qemu_without_cgroups_and_migrates_on_host_address():
    conf = parse_conf(qemu_conf(LabPlan(0, ROOT).host(3)))
    assert conf["user"] == '"root"' and conf["group"] == '"root"'
    assert conf["cgroup_controllers"] == "[ ]"  # the memtune workaround relies on this
    assert conf["namespaces"] == "[ ]"
    assert conf["security_driver"] == '"none"'
    assert conf["stdio_handler"] == '"file"'
    assert conf["migration_address"] == conf["migration_host"] == '"198.18.0.4"'


def test_libvirtd_command_binds_every_host_dir_then_execs_libvirtd():
    h = LabPlan(0, ROOT).host(1)
    cmd = libvirtd_command(h)
    # The host's own network namespace first, then its own mount + UTS namespaces.
    assert cmd[:3] == ["nsenter", "--net=/run/netns/ferry0-h1", "--"]
    assert cmd[3:8] == ["unshare", "--mount", "--uts", "--propagation", "private"]
    script = cmd[-1]
    for sub, target in (("etc", "/etc/libvirt"), ("run", "/run/libvirt"), ("log", "/var/log/libvirt"),
                        ("lib", "/var/lib/libvirt"), ("cache", "/var/cache/libvirt")):
        assert f"mount --bind /r/lab0/h1/{sub} {target}" in script
    assert "hostname ferry-h1" in script
    # exec, so the pid the lab saves is libvirtd's own; mounts before it.
    assert script.rstrip().split("; ")[-1].startswith("exec libvirtd --listen --config /etc/libvirt/libvirtd.conf")
    # The host's copy of /run/netns goes first (it would pin other hosts' namespaces), then set -e.
    assert script.startswith("umount -l /run/netns 2>/dev/null || true; set -e")


def test_agent_command_runs_in_host_namespaces_bound_to_host_address(tmp_path):
    lab = Lab(3, root=tmp_path)
    h = lab.host(2)
    cmd = lab.agent_command(h, 4242, ["--old-agent"])
    assert cmd[:6] == ["nsenter", "--target=4242", "--mount", "--uts", "--net", "--"]
    joined = " ".join(cmd)
    assert "-m ferry.agent run --address 198.18.3.3 --port 54321" in joined
    # Local: the host's own unix socket, which a cut link does not touch.
    assert "--libvirt-uri qemu:///system" in joined
    assert f"--log-file {tmp_path}/lab3/h2/agent.log --old-agent" in joined  # mutual TLS: no --dev
