"""Test networks and guests plugged into them, for test_network and
test_inventory.  Networks are named `lltest-<hex>-<label>`, their bridges
`lltest<hex><n>` (at most 15 characters), their addresses a /24 of
172.30.0.0/16 picked at random per test (neither the host's nor the rig's
10.77.0.0/24); the fixture removes them, also when the test fails."""

import random
import uuid

import libvirt
import pytest

import testbed
from conftest import run_module

ADDRESS_TIMEOUT = 90  # a TCG guest boots in ~5 s, slower when the CPU is busy


class TestNetwork:
    """The names and addresses of one test network."""

    def __init__(self, prefix, label, index):
        self.name = prefix + label
        self.bridge = 'lltest%s%d' % (prefix[len(testbed.TEST_PREFIX):-1], index)
        self.third = random.randint(100, 250)
        self.subnet = '172.30.%d.0/24' % self.third
        self.gateway = '172.30.%d.1' % self.third

    def address(self, last):
        return '172.30.%d.%d' % (self.third, last)

    def params(self, **extra):
        """Structured options of a NAT network with DHCP on .100-.199."""
        params = dict(name=self.name, forward_mode='nat', bridge=self.bridge,
                      ipv4=dict(address=self.gateway + '/24',
                                dhcp_ranges=[dict(start=self.address(100), end=self.address(199))]))
        params.update(extra)
        return params

    def interface_xml(self, mac):
        return ("<interface type='network'><mac address='%s'/><source network='%s'/>"
                "<model type='virtio'/></interface>" % (mac, self.name))


@pytest.fixture
def make_network(conn):
    """Factory of test networks (names only; the test creates them)."""
    prefix = '%s%s-' % (testbed.TEST_PREFIX, uuid.uuid4().hex[:6])
    made = []

    def make(label='net'):
        made.append(TestNetwork(prefix, label, len(made)))
        return made[-1]

    yield make
    testbed.sweep(conn, prefix)


def random_mac():
    return '52:54:00:%02x:%02x:%02x' % tuple(random.randint(0, 255) for _byte in range(3))


def boot_on_network(make_guest, network, label='vm'):
    """A booted test guest with one NIC on `network`; returns (guest, mac)."""
    mac = random_mac()
    vm = make_guest(label)
    vm.xml = vm.xml.replace('</devices>', network.interface_xml(mac) + '\n  </devices>')
    result = run_module('domain', xml=vm.xml, state='running')
    assert result.get('failed') is not True, result
    vm.wait_ready()
    return vm, mac


def lease_address(vm):
    """The guest's address from the network's DHCP lease, waited for with domain_info."""
    result = run_module('domain_info', name=vm.name, wait_for_address=True, address_timeout=ADDRESS_TIMEOUT)
    assert result.get('failed') is not True, result
    return result['domains'][0]['interfaces'][0]['addresses'][0]


def libvirt_network(conn, name):
    try:
        return conn.networkLookupByName(name)
    except libvirt.libvirtError:
        return None
