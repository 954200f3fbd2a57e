"""lifecycle.libvirt.network and network_info against the real libvirtd: every
state with check mode, diff and idempotency; the XML form; live DHCP-host
updates on a network a running guest uses; the guest's DHCP lease in
domain_info; refusals that change nothing."""

import ipaddress
import json
import os
import subprocess

import libvirt

import pytest

from conftest import run_module
from network_helpers import boot_on_network, lease_address, libvirt_network, make_network  # noqa: F401  pylint: disable=unused-import
from storage_helpers import converge, refused


def observed(conn, name):
    """(state, autostart) of a network, read with libvirt."""
    network = libvirt_network(conn, name)
    if network is None:
        return 'absent', False
    return ('active' if network.isActive() else 'inactive'), bool(network.isPersistent() and network.autostart())


def converges_to(conn, net, state, autostart=None, **params):
    """converge() (check, real, again) and then libvirt's own view; the
    network has no autostart unless `autostart` sets it."""
    name = params.setdefault('name', net.name)
    if autostart is not None:
        params['autostart'] = autostart
    before = observed(conn, name)
    # present defines without starting or stopping
    reached = ('inactive' if before[0] == 'absent' else before[0]) if state == 'present' else state

    def look(real):
        assert observed(conn, name) == ((reached, bool(autostart)) if real else before)

    result = converge('network', observe=look, state=state, **params)
    assert result['state'] == reached
    return result


def test_every_state_with_check_mode_diff_and_idempotency(conn, make_network):
    net = make_network()
    created = converges_to(conn, net, 'active', **net.params())
    assert created['actions'] == ['define', 'start']
    assert created['bridge'] == net.bridge
    assert 'state: absent' in created['diff'][0]['before'] and 'state: active' in created['diff'][0]['after']
    assert net.gateway in created['diff'][1]['after']
    # libvirt filled in a uuid, a MAC and the bridge's stp/delay: no change.
    stored = libvirt_network(conn, net.name).XMLDesc(0)
    assert '<uuid>' in stored and '<mac address=' in stored and "stp='on'" in stored
    again = run_module('network', check=True, state='active', **net.params())
    assert again['changed'] is False and again['differences'] == []

    assert converges_to(conn, net, 'inactive')['actions'] == ['stop']
    assert run_module('network', name=net.name, state='present')['changed'] is False
    assert converges_to(conn, net, 'active', autostart=True)['actions'] == ['start', 'set_autostart']
    assert converges_to(conn, net, 'present', autostart=False)['actions'] == ['set_autostart']
    assert converges_to(conn, net, 'absent')['actions'] == ['stop', 'undefine']
    defined = converges_to(conn, net, 'present', **net.params())
    assert defined['actions'] == ['define']
    assert converges_to(conn, net, 'absent')['actions'] == ['undefine']


def test_definition_changes_of_an_active_network(conn, make_network):
    net = make_network()
    run_module('network', state='active', **net.params())
    uuid = libvirt_network(conn, net.name).UUIDString()

    # Another DHCP range needs a restart: stored, reported, not applied.
    wider = net.params(ipv4=dict(address=net.gateway + '/24',
                                 dhcp_ranges=[dict(start=net.address(50), end=net.address(199))]))
    pending = converge('network', state='active', **wider)
    assert pending['pending_restart'] is True and pending['actions'] == ['define']
    assert any('range' in line for line in pending['differences'])
    network = libvirt_network(conn, net.name)
    assert net.address(50) in network.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE)  # the stored definition
    assert net.address(50) not in network.XMLDesc(0)  # the running network keeps its old range
    assert run_module('network', state='active', **wider)['pending_restart'] is True

    restarted = converge('network', state='active', restart_on_change=True, **wider)
    assert restarted['actions'] == ['stop', 'start'] and restarted['pending_restart'] is False
    assert net.address(50) in libvirt_network(conn, net.name).XMLDesc(0)

    # NAT -> isolated: the forward element libvirt has is a difference.
    isolated = converge('network', state='active', restart_on_change=True,
                        **dict(wider, forward_mode='isolated'))
    assert any('forward' in line and 'removed' in line for line in isolated['differences'])
    network = libvirt_network(conn, net.name)
    assert '<forward' not in network.XMLDesc(0)
    assert network.UUIDString() == uuid  # redefinitions keep libvirt's uuid


def test_xml_declaration(conn, make_network):
    net = make_network()
    xml = """<network>
  <name>%s</name>
  <bridge name='%s'/>
  <domain name='lltest.example'/>
  <mtu size='1400'/>
  <dns><host ip='%s'><hostname>alpha</hostname></host></dns>
  <ip address='%s' prefix='24'>
    <dhcp><range start='%s' end='%s'/><host mac='52:54:00:10:20:30' name='alpha' ip='%s'/></dhcp>
  </ip>
  <ip family='ipv6' address='fd77:%d::1' prefix='64'/>
</network>""" % (net.name, net.bridge, net.address(10), net.gateway, net.address(100), net.address(199),
                 net.address(10), net.third)
    converge('network', observe=None, xml=xml, state='active')
    facts = run_module('network_info', name=net.name)['networks'][0]
    assert facts in run_module('network_info')['networks']  # listing all gives the same facts
    missing = run_module('network_info', name=net.name + '-missing')
    assert missing['failed'] is True and 'no network with that name' in missing['msg']
    assert facts['forward_mode'] == 'isolated' and facts['bridge'] == net.bridge and facts['mtu'] == 1400
    assert facts['domain'] == 'lltest.example'
    assert facts['dns_hosts'] == [dict(ip=net.address(10), hostnames=['alpha'])]
    assert [a['family'] for a in facts['addresses']] == ['ipv4', 'ipv6']
    assert facts['addresses'][0]['dhcp_hosts'] == [dict(mac='52:54:00:10:20:30', ip=net.address(10), name='alpha')]
    # The same network as structured options reads as no change either.
    same = net.params(forward_mode='isolated', domain='lltest.example', mtu=1400,
                      dns_hosts=[dict(ip=net.address(10), hostnames=['alpha'])],
                      ipv4=dict(address=net.gateway + '/24',
                                dhcp_ranges=[dict(start=net.address(100), end=net.address(199))],
                                dhcp_hosts=[dict(mac='52:54:00:10:20:30', ip=net.address(10), name='alpha')]),
                      ipv6=dict(address='fd77:%d::1/64' % net.third))
    result = run_module('network', check=True, state='active', **same)
    assert result['changed'] is False, result['differences']


def test_guest_lease_live_host_update_and_removal_in_use(conn, make_network, make_guest):
    net = make_network()
    run_module('network', state='active', **net.params())
    vm, mac = boot_on_network(make_guest, net)

    address = lease_address(vm)
    assert address['source'] == 'lease' and address['family'] == 'ipv4'
    leases = run_module('network_info', name=net.name)['networks'][0]['dhcp_leases']
    assert [(lease['mac'], lease['address']) for lease in leases] == [(mac, address['address'])]
    assert run_module('network_info', name=net.name)['networks'][0]['users'] == [vm.name]

    # A static DHCP host and a DNS entry, added live.
    bridge_ports = sorted(os.listdir('/sys/class/net/%s/brif' % net.bridge))
    assert len(bridge_ports) == 1  # the guest's tap device
    pid_file = '/run/libvirt/network/%s.pid' % net.name
    dnsmasq_pid = open(pid_file).read().strip()
    updated = net.params(ipv4=dict(address=net.gateway + '/24',
                                   dhcp_ranges=[dict(start=net.address(100), end=net.address(199))],
                                   dhcp_hosts=[dict(mac=mac, ip=net.address(20), name='fixed')]),
                         dns_hosts=[dict(ip=net.address(20), hostnames=['fixed'])])
    live = converge('network', state='active', **updated)
    assert live['actions'] == ['define', 'update_live'] and live['pending_restart'] is False
    assert len(live['live_updates']) == 2
    network = libvirt_network(conn, net.name)
    assert "ip='%s'" % net.address(20) in network.XMLDesc(0)  # the running network has it
    assert "ip='%s'" % net.address(20) in network.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE)  # and its stored definition
    # Not restarted: the bridge keeps the guest's port, dnsmasq is the same process, the lease stays.
    assert sorted(os.listdir('/sys/class/net/%s/brif' % net.bridge)) == bridge_ports
    assert open(pid_file).read().strip() == dnsmasq_pid
    assert vm.state() == 'running'
    assert [lease['address'] for lease in run_module('network_info', name=net.name)['networks'][0]['dhcp_leases']] \
        == [address['address']]

    # No agent in the guest: waiting for an agent address times out, naming the VM.
    timeout = run_module('domain_info', name=vm.name, wait_for_address=True, address_source='agent',
                         address_timeout=2)
    assert timeout['failed'] is True and vm.name in timeout['msg'] and 'Timed out' in timeout['msg']

    # Removing or stopping it while the guest runs: refused, naming the guest.
    for state in ('absent', 'inactive'):
        result = refused('network', vm.name, name=net.name, state=state)
        assert 'force' in result['msg']
        assert observed(conn, net.name) == ('active', False)
    assert run_module('network', check=True, name=net.name, state='absent', force=True)['changed'] is True
    assert converges_to(conn, net, 'absent', force=True)['actions'] == ['stop', 'undefine']


def test_wait_for_address_of_a_stopped_domain_fails_naming_it(make_guest):
    vm = make_guest()
    run_module('domain', xml=vm.xml, state='defined')
    result = run_module('domain_info', name=vm.name, wait_for_address=True, address_timeout=5)
    assert result['failed'] is True and vm.name in result['msg'] and 'not running' in result['msg']


BAD_INPUTS = [
    ('overlapping DHCP ranges', dict(dhcp_ranges=[(100, 150), (140, 199)]), 'overlaps'),
    ('range outside the network', dict(dhcp_ranges=[(100, 199)], outside_range=True), 'outside the network'),
    ('host outside the network', dict(dhcp_hosts=True), 'outside the network'),
    ('range containing the gateway', dict(dhcp_ranges=[(1, 50)]), "network's own address"),
]


@pytest.mark.parametrize('label,bad,text', BAD_INPUTS, ids=[case[0] for case in BAD_INPUTS])
def test_bad_addresses_are_refused_and_change_nothing(conn, make_network, label, bad, text):
    net = make_network()
    ipv4 = dict(address=net.gateway + '/24',
                dhcp_ranges=[dict(start=net.address(a), end=net.address(b)) for a, b in bad.get('dhcp_ranges', [])])
    if bad.get('outside_range'):
        ipv4['dhcp_ranges'][0]['end'] = '172.31.%d.10' % net.third
    if bad.get('dhcp_hosts'):
        ipv4['dhcp_hosts'] = [dict(mac='52:54:00:00:00:01', ip='10.78.0.5')]
    for check in (True, False):
        run = run_module('network', check=check, **net.params(ipv4=ipv4))
        assert run['failed'] is True and text in run['msg'], (label, run['msg'])
        assert libvirt_network(conn, net.name) is None


def test_host_side_refusals_change_nothing(conn, make_network):
    first, second = make_network('first'), make_network('second')
    run_module('network', state='present', **first.params())
    clash = second.params(ipv4=dict(address=first.address(1) + '/16'))
    overlap = refused('network', 'its addresses overlap those of another network: 172.30.0.0/16 overlaps ', **clash)
    # A concurrent session's test network in 172.30.0.0/16 is named too: ours must be among them.
    assert '172.30.0.0/16 overlaps %s of network %s' % (first.subnet, first.name) in overlap['msg'], overlap['msg']
    refused('network', 'the host has no bridge lltestnobridge', name=second.name, forward_mode='bridge',
            bridge='lltestnobridge')
    refused('network', 'the host has no interface lltestnodev', name=second.name, forward_mode='macvtap',
            forward_dev='lltestnodev')
    refused('network', 'longer than 15 characters', **second.params(bridge='lltest-much-too-long'))
    refused('network', "libvirt does not accept the XML: XML error: nat forwarding requested, but no IP address "
            "provided for network '%s'" % second.name, name=second.name, forward_mode='nat')
    refused('network', 'not well-formed', xml='<network><name>%s</name>' % second.name)
    for check in (True, False):
        bogus = run_module('network', check=check, xml="<network><name>%s</name><forward mode='bogus'/></network>"
                           % second.name)
        assert bogus['failed'] is True and "libvirt does not accept the XML: unsupported configuration: unknown " \
            "forwarding type 'bogus'" in bogus['msg']
    assert libvirt_network(conn, second.name) is None
    assert observed(conn, first.name) == ('inactive', False)


def host_subnet():
    """The IPv4 address of the host's own uplink (the default route's
    interface, not a bridge of a libvirt network)."""
    def ip_json(*args):
        return json.loads(subprocess.run(['ip', '-j', '-4'] + list(args), capture_output=True, text=True,
                                         check=True).stdout)

    uplink = ip_json('route', 'show', 'default')[0]['dev']
    info = ip_json('addr', 'show', 'dev', uplink, 'scope', 'global')[0]['addr_info'][0]
    return ipaddress.ip_interface('%s/%s' % (info['local'], info['prefixlen']))


def test_a_new_network_libvirt_cannot_start_is_not_left_defined(conn, make_network):
    net = make_network()
    own = host_subnet()
    address = next(a for a in own.network.hosts() if a != own.ip)
    result = refused('network', 'Failed to start network %s' % net.name, name=net.name, forward_mode='nat',
                     bridge=net.bridge, ipv4=dict(address='%s/%d' % (address, own.network.prefixlen)))
    assert 'already in use' in result['msg'] and result['changed'] is False and result['actions'] == []
    assert libvirt_network(conn, net.name) is None


@pytest.fixture
def host_links(make_network):
    """A host bridge and one end of a veth pair (lltest names), removed afterwards."""
    names = dict(bridge=make_network('hostbr').bridge, veth=make_network('veth').bridge)
    peer = make_network('peer').bridge
    try:
        subprocess.run(['ip', 'link', 'add', names['bridge'], 'type', 'bridge'], check=True)
        subprocess.run(['ip', 'link', 'add', names['veth'], 'type', 'veth', 'peer', 'name', peer], check=True)
        yield names
    finally:
        for name in names.values():  # deleting one end of a veth pair deletes both
            subprocess.run(['ip', 'link', 'del', name], capture_output=True, check=False)


@pytest.mark.parametrize('mode', ['route', 'open', 'bridge', 'macvtap'])
def test_every_forward_mode(conn, make_network, host_links, mode):
    net = make_network(mode)
    if mode == 'bridge':
        params = dict(name=net.name, forward_mode='bridge', bridge=host_links['bridge'])
    elif mode == 'macvtap':
        params = dict(name=net.name, forward_mode='macvtap', forward_dev=host_links['veth'])
    else:
        params = net.params(forward_mode=mode)
    converges_to(conn, net, 'active', **params)
    facts = run_module('network_info', name=net.name)['networks'][0]
    assert facts['forward_mode'] == mode and facts['state'] == 'active'
    if mode == 'bridge':
        assert facts['bridge'] == host_links['bridge']
    assert converges_to(conn, net, 'absent')['actions'] == ['stop', 'undefine']
