"""The provision role waits until its VMs are ready, as each one's wait_for
asks: an address known (the test guest runs udhcpc on a libvirt network), its
serial marker, or the guest agent (the test guest has none: the role fails
naming it once its ready_timeout has passed)."""

import time

import guest
from conftest import run_module
from network_helpers import ADDRESS_TIMEOUT, make_network  # noqa: F401  pylint: disable=unused-import
from provision_helpers import run_role, tiny_guest_vm


def test_address_and_serial_waits_of_two_vms(conn, make_guest, make_network, domain_type, tmp_path):
    net = make_network()
    assert run_module('network', state='active', **net.params())['changed'] is True
    on_network, on_serial = make_guest('addr'), make_guest('serial')
    vms = [tiny_guest_vm(on_network, domain_type, network=net.name, wait_for='address', ready_timeout=ADDRESS_TIMEOUT),
           tiny_guest_vm(on_serial, domain_type, ready_marker=guest.READY_MARKER, wait_for='serial')]
    run_role(tmp_path, vms)
    # The guest asks for its lease only after booting: the role returned once it had one.
    leases = conn.networkLookupByName(net.name).DHCPLeases()
    mac = conn.lookupByName(on_network.name).XMLDesc(0).split("<mac address='")[1][:17]
    assert [lease['mac'] for lease in leases] == [mac]
    assert guest.wait_marker(on_serial.serial_log, timeout=0) == 1
    again = run_role(tmp_path, vms)
    assert 'changed=0' in again and 'failed=0' in again, again[-3000:]


def test_a_vm_not_ready_in_time_fails_the_role_naming_it(conn, make_guest, domain_type, tmp_path):
    no_agent, stopped = make_guest('noagent'), make_guest('stopped')
    # The test guest has no guest agent. A VM that is not to run is not waited for.
    vms = [tiny_guest_vm(no_agent, domain_type, wait_for='agent', ready_timeout=5),
           tiny_guest_vm(stopped, domain_type, wait_for='agent', ready_timeout=5, state='defined')]
    started = time.monotonic()
    output = run_role(tmp_path, vms, expect_failure=True)
    took = time.monotonic() - started
    assert 'VMs not ready: %s (wait_for agent: the guest agent did not answer within 5 s)"' % no_agent.name in output
    assert took < 100, took  # its 5 s, not the default 120 s
    # Both were provisioned, in their states; only the readiness failed.
    assert conn.lookupByName(no_agent.name).isActive() and not conn.lookupByName(stopped.name).isActive()
    # Nothing waits in check mode.
    checked = run_role(tmp_path, vms, check=True)
    assert 'changed=0' in checked and 'failed=0' in checked and 'not ready' not in checked, checked[-3000:]


def test_a_wait_the_vm_cannot_satisfy_fails_before_anything_is_made(conn, make_guest, domain_type, tmp_path):
    vm = make_guest('unwaitable')
    vms = [tiny_guest_vm(vm, domain_type, wait_for='address'),
           tiny_guest_vm(vm, domain_type, name=vm.name + '-2', wait_for='serial', serial_log=None)]
    vms[1].pop('serial_log')
    output = run_role(tmp_path, vms, expect_failure=True)
    assert 'VM %s: wait_for address needs a network or interfaces' % vm.name in output
    assert 'VM %s-2: wait_for serial needs serial_log and ready_marker' % vm.name in output
    pool = conn.storagePoolLookupByName('default')
    assert not [name for name in pool.listVolumes() if name.startswith(vm.name + '-root')]
    assert not [domain for domain in conn.listAllDomains() if domain.name().startswith(vm.name)]
