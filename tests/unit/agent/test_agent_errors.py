"""How the verbs' exceptions become JSON-RPC errors (agent/api.py `translated`)."""
import libvirt
import pytest

from ferry.agent.api import translated
from ferry.common.errors import InvalidInput
from ferry.common.jsonrpc import INVALID_PARAMS, JsonRpcError


def test_invalid_input_becomes_invalid_params_naming_the_field():
    with pytest.raises(JsonRpcError) as err, translated(libvirt):
        raise InvalidInput("maxBandwidth", "must be an integer")
    assert err.value.code == INVALID_PARAMS
    assert err.value.data == {"name": "invalidParams", "field": "maxBandwidth", "reason": "must be an integer"}
    assert "maxBandwidth" in err.value.message


def test_libvirt_error_becomes_the_named_error_with_libvirts_message():
    with pytest.raises(JsonRpcError) as err, translated(libvirt, "cannot change bandwidth", name="migrateErr"):
        raise libvirt.libvirtError("Requested operation is not valid: no job")
    assert err.value.name == "migrateErr" and err.value.code == 12
    assert err.value.message == "cannot change bandwidth: Requested operation is not valid: no job"


def test_already_exists_is_exist_only_where_asked():
    with pytest.raises(JsonRpcError) as err, translated(libvirt, "VM.create failed", exists=True):
        raise libvirt.libvirtError("operation failed: domain 'vm1' already exists with uuid x")
    assert err.value.name == "exist"
    with pytest.raises(JsonRpcError) as err, translated(libvirt, "VM.destroy failed"):
        raise libvirt.libvirtError("operation failed: domain 'vm1' already exists with uuid x")
    assert err.value.name == "unexpected" and err.value.message.startswith("VM.destroy failed: ")


def test_without_a_step_libvirt_errors_pass_through():
    with pytest.raises(libvirt.libvirtError), translated(libvirt):
        raise libvirt.libvirtError("Domain not found")


def test_vm_that_vanishes_between_lookup_and_stats_is_no_vm():
    """A migration ending under VM.getStats: noVM, not an 'unexpected' error (seen on the lab)."""
    from tests.unit.agent.fake_libvirt import FakeConnection, domain_xml
    from tests.unit.agent.test_agent_api import VM, make_agent, rpc

    conn = FakeConnection()
    dom = conn.add_domain(domain_xml())

    def gone():
        raise libvirt.libvirtError("Domain not found: no domain with matching uuid")
    dom.info = gone
    agent, _ = make_agent(conn)
    with pytest.raises(JsonRpcError) as err:
        rpc(agent, "VM.getStats", {"vmID": VM})
    assert err.value.name == "noVM"
