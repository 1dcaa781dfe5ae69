"""What the agent lets reach libvirt (ferry.agent.vm_checks): each rule, accepted and refused."""
from __future__ import annotations

import pytest

from ferry.agent import vm_checks as vc
from ferry.common.domain_xml import build_domain_xml
from ferry.common.errors import InvalidInput
from ferry.common.vmspec import VmSpec

LIMITS = vc.VmLimits(emulators=("/usr/bin/qemu-system-x86_64",), images_dirs=("/var/lib/ferry/lab/images",),
                     console_log_dir="/var/log/libvirt/qemu")
KERNEL = "/var/lib/ferry/lab/images/abc123/vmlinuz"
INITRD = "/var/lib/ferry/lab/images/abc123/initrd.cpio.gz"
UUID = "11111111-2222-3333-4444-555555555555"


def spec(**over):
    base = dict(name="vm1", memory_mib=1024, vcpus=2, kernel=KERNEL, initrd=INITRD, cmdline="console=ttyS0")
    return {**base, **over}


def refused(fn, *args, **kw) -> InvalidInput:
    with pytest.raises(InvalidInput) as err:
        fn(*args, **kw)
    return err.value


def create(params):
    vc.check_request("VM.create", params, LIMITS)


# ---- what Ferry itself builds passes ----------------------------------------------------------

@pytest.mark.parametrize("over", [{}, {"accel": "kvm"}, {"memtune_hard_limit_kib": 2 * 1024 * 1024},
                                  {"console_log": "/var/log/libvirt/qemu/vm1-serial.log"}, {"initrd": None},
                                  {"cmdline": ""}, {"vcpus": 1}, {"memory_mib": 16}, {"uuid": UUID}])
def test_specs_ferry_builds_are_accepted(over):
    create({"spec": spec(**over)})
    vc.check_domain_xml(build_domain_xml(VmSpec(**spec(**over))), LIMITS)   # and the same as raw XML


# ---- the spec's fields ------------------------------------------------------------------------

@pytest.mark.parametrize("over, field, says", [
    ({"emulator": "/tmp/evil.sh"}, "spec.emulator", "not an allowed emulator"),
    ({"emulator": "/usr/bin/qemu-system-aarch64"}, "spec.emulator", "not an allowed emulator"),
    ({"kernel": "/etc/shadow"}, "spec.kernel", "not under the agent's images directory"),
    ({"kernel": "/var/lib/ferry/lab/images/../../../../etc/shadow"}, "spec.kernel", "no '..'"),
    ({"kernel": "/var/lib/ferry/lab/images"}, "spec.kernel", "not under"),
    ({"kernel": "/var/lib/ferry/lab/imagesX/k"}, "spec.kernel", "not under"),
    ({"kernel": "/var/lib/ferry/lab/images//k"}, "spec.kernel", "no empty component"),
    ({"kernel": "/var/lib/ferry/lab/images/a b"}, "spec.kernel", "letters, digits"),
    ({"kernel": "/var/lib/ferry/lab/images/" + "a" * 256}, "spec.kernel", "letters, digits"),
    ({"kernel": "/var/lib/ferry/lab/images/" + "a/" * 600 + "k"}, "spec.kernel", "at most 1024"),
    ({"initrd": "/root/.ssh/id_rsa"}, "spec.initrd", "not under"),
    ({"console_log": "/etc/passwd"}, "spec.console_log", "not under the console log directory"),
    ({"console_log": "/var/log/libvirt/qemu/../../../etc/passwd"}, "spec.console_log", "no '..'"),
    ({"memory_mib": 2 ** 31}, "spec.memory_mib", "16..16777216 MiB"),
    ({"memtune_hard_limit_kib": 10 ** 30}, "spec.memtune_hard_limit_kib", "must be 1.."),
    ({"cmdline": "x" * 5000}, "spec.cmdline", "at most 4096"),
])
def test_spec_values_that_must_not_reach_libvirt(over, field, says):
    err = refused(create, {"spec": spec(**over)})
    assert err.field == field and says in err.reason, (err.field, err.reason)


def test_the_emulator_allowlist_is_the_agents():
    lenient = vc.VmLimits(("/usr/bin/qemu-system-x86_64", "/opt/qemu/bin/qemu-system-x86_64"),
                          LIMITS.images_dirs, LIMITS.console_log_dir)
    vc.check_request("VM.create", {"spec": spec(emulator="/opt/qemu/bin/qemu-system-x86_64")}, lenient)
    err = refused(create, {"spec": spec(emulator="/opt/qemu/bin/qemu-system-x86_64")})   # not in LIMITS
    assert "not an allowed emulator" in err.reason and "allows: /usr/bin/qemu-system-x86_64" in err.reason


def test_symlinks_out_of_the_images_dir_are_refused_once_resolved():
    links = {"/var/lib/ferry/lab/images/evil": "/etc/shadow"}
    err = refused(vc.check_file_under, "kernel", "/var/lib/ferry/lab/images/evil", LIMITS.images_dirs, "images",
                  resolve=lambda p: links.get(p, p))
    assert "not under" in err.reason
    assert vc.check_file_under("kernel", KERNEL, LIMITS.images_dirs, "images", resolve=lambda p: p) == KERNEL


# ---- names and numbers ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["vm1", "a", "A.b_c-9", "x" * 63])
def test_good_names(name):
    assert vc.check_name("name", name) == name


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../../../etc/passwd", "a\x00b", "x" * 64, "é", "a b",
                                  "\ud800", None, 7])
def test_bad_names(name):
    assert refused(vc.check_name, "name", name).field == "name"


@pytest.mark.parametrize("value, ok", [(1, True), (512, True), ("8", True), (0, False), (513, False),
                                       (-1, False), (True, False), (2 ** 63, False), ("1" * 40, False),
                                       ("-3", False), (1.5, False), (None, False)])
def test_bounded_integers(value, ok):
    if ok:
        assert 1 <= vc.check_int("vcpus", value, 1, 512) <= 512
    else:
        assert refused(vc.check_int, "vcpus", value, 1, 512).field == "vcpus"


@pytest.mark.parametrize("value", [UUID, UUID.upper()])
def test_uuids(value):
    assert vc.check_uuid("vmID", value) == UUID


@pytest.mark.parametrize("value", ["", "x", UUID + "0", "{" + UUID[:-2] + "}", 5, None, "\ud800" * 36])
def test_bad_uuids(value):
    assert refused(vc.check_uuid, "vmID", value).field == "vmID"


# ---- raw domain XML ---------------------------------------------------------------------------

def xml(devices="", os_extra="", top="", kernel=KERNEL, memory="<memory unit='MiB'>1024</memory>", vcpu="2"):
    return (f"<domain type='qemu'><name>g</name><uuid>{UUID}</uuid>{memory}<vcpu>{vcpu}</vcpu>"
            f"<os><type arch='x86_64' machine='pc'>hvm</type><kernel>{kernel}</kernel>{os_extra}</os>{top}"
            f"<devices><emulator>/usr/bin/qemu-system-x86_64</emulator>{devices}</devices></domain>")


def test_minimal_raw_xml_is_accepted():
    vc.check_domain_xml(xml(), LIMITS)
    vc.check_domain_xml("<domain type='kvm'><name>g</name><memory>1048576</memory></domain>", LIMITS)


@pytest.mark.parametrize("doc, says", [
    (xml(devices="<disk type='file'><source file='/etc/shadow'/></disk>"), "<disk> is not allowed"),
    (xml(devices="<filesystem type='mount'><source dir='/'/></filesystem>"), "<filesystem> is not allowed"),
    (xml(devices="<hostdev mode='subsystem'/>"), "<hostdev> is not allowed"),
    (xml(devices="<interface type='ethernet'><script path='/tmp/x'/></interface>"), "<interface> is not allowed"),
    (xml(devices="<serial type='file'><source path='/etc/passwd'/></serial>"), "type='file'"),
    (xml(devices="<serial type='pty'><log file='/etc/passwd'/></serial>"), "not under the console log"),
    (xml(top="<seclabel type='none'/>"), "<seclabel> is not allowed"),
    (xml(os_extra="<loader>/etc/shadow</loader>"), "<loader> is not allowed"),
    (xml(kernel="/etc/shadow"), "not under the agent's images directory"),
    (xml(memory="<memory unit='GiB'>100000</memory>"), "16..16777216 MiB"),
    (xml(memory="<memory unit='parsec'>1</memory>"), "unknown memory unit"),
    (xml(memory="<memory>99999999999999999999999</memory>"), "16..16777216 MiB"),
    (xml(memory="<memory>-5</memory>"), "must be an integer"),
    (xml(vcpu="0"), "1..512"), (xml(vcpu="100000"), "1..512"),
    (xml().replace("/usr/bin/qemu-system-x86_64", "/tmp/run-me-as-root.sh"), "not an allowed emulator"),
    (xml().replace("type='qemu'", "type='xen'"), "must be one of qemu, kvm"),
    (xml().replace("<name>g</name>", "<name>../x</name>"), "letters, digits"),
    (xml().replace("<name>g</name>", "<name>g</name><name>h</name>"), "more than once"),
    (xml().replace("<name>g</name>", ""), "no <name>"),
    (xml().replace("machine='pc'", "machine='pc;rm -rf'"), "letters, digits"),
    (xml().replace("<domain type='qemu'>", "<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/"
                                           "qemu/1.0'>").replace("</devices>", "</devices><qemu:commandline>"
                                           "<qemu:arg value='-x'/></qemu:commandline>"), "is not allowed"),
    ("<!DOCTYPE d [<!ENTITY a 'aaaa'>]><domain><name>&a;</name></domain>", "DOCTYPE"),
    ("<domain><name>g</name>", "not well-formed"),
    ("<dom/>", "root element must be <domain>"),
    ("<domain>" + "<name>g</name>" + " " * (65 * 1024) + "</domain>", "at most 65536 bytes"),
    (xml().replace("<vcpu>", "<vcpu cpuset='0-3'>"), "attribute 'cpuset'"),
    (xml(top="<on_crash>coredump-restart</on_crash>"), "must be one of destroy"),
    (xml(top="<features><acpi>junk</acpi></features>"), "must be empty"),
])
def test_raw_xml_that_must_not_reach_libvirt(doc, says):
    err = refused(create, {"xml": doc})
    assert err.field == "xml" and says in err.reason, err.reason


def test_raw_xml_must_be_a_string():
    assert refused(vc.check_domain_xml, 5, LIMITS).field == "xml"


# ---- the other verbs' parameters --------------------------------------------------------------

@pytest.mark.parametrize("method, params, field", [
    ("VM.getStats", {"vmID": "../../x"}, "vmID"),
    ("VM.destroy", {"vmID": 2 ** 63}, "vmID"),
    ("VM.migrate", {"vmID": UUID, "params": {"dst": "127.0.0.3", "maxBandwidth": 2 ** 63}}, "maxBandwidth"),
    ("VM.migrate", {"vmID": UUID, "dst": "999.999.1.1"}, "dst"),
    ("VM.migrate", {"vmID": UUID, "params": {"dst": "h2:99999"}}, "dst"),
    ("VM.migrate", {"vmID": UUID, "params": {"dst": "h2", "dstqemu": "a b"}}, "dstqemu"),
    ("VM.migrate", {"vmID": UUID, "params": {"dst": "h2", "consoleAddress": "x" * 400}}, "consoleAddress"),
    ("VM.migrateChangeParams", {"vmID": UUID, "params": {"maxBandwidth": 10 ** 30}}, "params.maxBandwidth"),
    ("VM.migrateChangeParams", {"vmID": UUID, "params": {"maxBandwidth": 0}}, "params.maxBandwidth"),
    ("VM.migrationCreate", {"vmID": UUID, "name": "a/b"}, "name"),
    ("VM.migrationCreate", {"vmID": UUID, "incomingLimit": 10 ** 9}, "incomingLimit"),
])
def test_request_values_are_bounded(method, params, field):
    assert refused(vc.check_request, method, params, LIMITS).field == field


@pytest.mark.parametrize("method, params", [
    ("VM.migrate", {"vmID": UUID, "params": {"dst": "127.0.5.2:54321", "maxBandwidth": 0, "dstqemu": "10.0.0.2"}}),
    ("VM.migrate", {"vmID": UUID, "params": {"dst": "[::1]:54321", "maxBandwidth": "1000"}}),
    ("VM.migrate", {"vmID": UUID, "params": {"dst": "kvm-07.example.org"}}),
    ("VM.migrateChangeParams", {"vmID": UUID, "params": {"maxBandwidth": 1_000_000}}),
    ("VM.migrationCreate", {"vmID": UUID, "name": "vm1", "incomingLimit": 2}),
    ("Host.getStats", {}),
])
def test_good_requests_pass(method, params):
    vc.check_request(method, params, LIMITS)


# ---- wired in front of the verbs ------------------------------------------------------------

def test_the_agent_server_refuses_before_libvirt_sees_anything():
    """Through the agent's server (dev mode here: no roles, but the checks still apply)."""
    import threading

    from ferry.agent.dispatch import AccessControl
    from ferry.agent.server import make_server
    from ferry.common.jsonrpc import INVALID_PARAMS, JsonRpcClient, JsonRpcError
    from tests.unit.agent.test_agent_api import make_agent

    agent, conn = make_agent()
    access = AccessControl(check_params=lambda m, p: vc.check_request(m, p, LIMITS))
    server = make_server("127.0.0.1", 0, agent.methods(), access=access)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        client = JsonRpcClient(f"http://127.0.0.1:{server.server_address[1]}", timeout=5)
        for params, field in (({"spec": spec(kernel="/etc/shadow")}, "spec.kernel"),
                              ({"spec": spec(emulator="/tmp/x.sh")}, "spec.emulator"),
                              ({"xml": xml(devices="<disk type='file'/>")}, "xml")):
            with pytest.raises(JsonRpcError) as err:
                client.call("VM.create", params)
            assert err.value.code == INVALID_PARAMS and err.value.data["field"] == field
        assert conn.domains == {}                      # nothing was created
        assert client.call("VM.create", {"spec": spec()})["name"] == "vm1"
    finally:
        server.shutdown()
        server.server_close()
