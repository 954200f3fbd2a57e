"""Pure parts of the network module: building XML from options, address
checks, the network comparison rules and the live host updates."""

import ipaddress

import pytest

from ansible_collections.lifecycle.libvirt.plugins.module_utils import _network as N
from ansible_collections.lifecycle.libvirt.plugins.module_utils import _xml
from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import OperationFailed

STORED = """
<network connections='1'>
  <name>lab</name>
  <uuid>0f0e0d0c-0b0a-4908-8706-050403020100</uuid>
  <forward mode='nat'><nat><port start='1024' end='65535'/></nat></forward>
  <bridge name='virbr7' stp='on' delay='0'/>
  <mac address='52:54:00:11:22:33'/>
  <ip address='192.168.100.1' prefix='24'>
    <dhcp>
      <range start='192.168.100.100' end='192.168.100.199'/>
      <host mac='52:54:00:00:00:02' ip='192.168.100.12'/>
      <host mac='52:54:00:00:00:01' name='one' ip='192.168.100.11'/>
    </dhcp>
  </ip>
</network>
"""

DECLARED = """
<network>
  <name>lab</name>
  <forward mode='nat'/>
  <ip address='192.168.100.1' prefix='24'>
    <dhcp>
      <range start='192.168.100.100' end='192.168.100.199'/>
      <host mac='52:54:00:00:00:01' name='one' ip='192.168.100.11'/>
      <host mac='52:54:00:00:00:02' ip='192.168.100.12'/>
    </dhcp>
  </ip>
</network>
"""


def params(**options):
    base = dict((name, None) for name in N.STRUCTURED_OPTIONS)
    base['name'] = 'lab'
    base.update(options)
    return base


def ipv4(address='192.168.100.1/24', ranges=(('192.168.100.100', '192.168.100.199'),), hosts=()):
    return dict(address=address, dhcp_ranges=[dict(start=s, end=e) for s, e in ranges],
                dhcp_hosts=[dict(mac=m, ip=i, name=n) for m, i, n in hosts])


def test_libvirts_fill_ins_and_order_are_no_difference():
    assert N.differences(_xml.parse_xml(DECLARED), _xml.parse_xml(STORED)) == []


def test_a_forward_mode_libvirt_has_and_the_declaration_lacks_is_a_difference():
    isolated = _xml.parse_xml(DECLARED)
    isolated.remove(isolated.find('forward'))
    assert N.differences(isolated, _xml.parse_xml(STORED)) == ['/network/forward[mode=nat]: removed']


def test_a_removed_dhcp_range_is_a_difference():
    declared = _xml.parse_xml(DECLARED)
    declared.find('ip/dhcp').remove(declared.find('ip/dhcp/range'))
    assert N.differences(declared, _xml.parse_xml(STORED)) == [
        '/network/ip[address=192.168.100.1,prefix=24]/dhcp/range[end=192.168.100.199,start=192.168.100.100]: removed']


def test_merged_definition_keeps_uuid_mac_and_bridge_in_order():
    merged = N.merged_definition(_xml.parse_xml(DECLARED), _xml.parse_xml(STORED))
    assert [child.tag for child in merged][:5] == ['name', 'uuid', 'mac', 'bridge', 'forward']
    assert merged.find('bridge').get('name') == 'virbr7'


def test_host_changes_are_live_updates_and_other_changes_are_not():
    stored = _xml.parse_xml(STORED)
    declared = _xml.parse_xml(DECLARED)
    declared.find('ip/dhcp').remove(declared.findall('ip/dhcp/host')[1])
    dns = _xml.etree.SubElement(declared, 'dns')
    _xml.etree.SubElement(_xml.etree.SubElement(dns, 'host', ip='192.168.100.11'), 'hostname').text = 'one'
    deletions, additions = N.host_updates(declared, stored)
    assert [(e.section, e.parent_index, e.xml) for e in deletions] == [
        ('dhcp-host', 0, '<host mac="52:54:00:00:00:02" ip="192.168.100.12"/>')]
    assert [(e.section, e.xml) for e in additions] == [
        ('dns-host', '<host ip="192.168.100.11"><hostname>one</hostname></host>')]
    declared.find('ip/dhcp/range').set('start', '192.168.100.50')
    assert N.host_updates(declared, stored) is None


def test_structured_options_build_the_xml():
    network = N.network_xml(params(forward_mode='nat', bridge='br-lab', mtu=9000, domain='lab.example',
                                   dns_hosts=[dict(ip='192.168.100.11', hostnames=['one', 'uno'])],
                                   ipv4=ipv4(hosts=[('52:54:00:00:00:01', '192.168.100.11', 'one')]),
                                   ipv6=ipv4('fd00:100::1/64', ranges=())))
    assert _xml.to_text(network) == (
        '<network>\n  <name>lab</name>\n  <forward mode="nat"/>\n  <bridge name="br-lab"/>\n'
        '  <mtu size="9000"/>\n  <domain name="lab.example"/>\n  <dns>\n    <host ip="192.168.100.11">\n'
        '      <hostname>one</hostname>\n      <hostname>uno</hostname>\n    </host>\n  </dns>\n'
        '  <ip address="192.168.100.1" prefix="24">\n    <dhcp>\n'
        '      <range start="192.168.100.100" end="192.168.100.199"/>\n'
        '      <host mac="52:54:00:00:00:01" name="one" ip="192.168.100.11"/>\n    </dhcp>\n  </ip>\n'
        '  <ip family="ipv6" address="fd00:100::1" prefix="64"/>\n</network>\n')


def test_macvtap_and_isolated():
    macvtap = N.network_xml(params(forward_mode='macvtap', forward_dev='eth0'))
    assert _xml.to_text(macvtap.find('forward')).split() == ['<forward', 'mode="bridge">', '<interface',
                                                             'dev="eth0"/>', '</forward>']
    assert N.forward_mode(macvtap) == 'macvtap'
    assert N.forward_mode(N.network_xml(params(forward_mode='isolated'))) is None


@pytest.mark.parametrize('options,text', [
    (dict(forward_mode='macvtap'), 'needs forward_dev'),
    (dict(forward_mode='bridge'), 'needs bridge'),
    (dict(forward_mode='isolated', forward_dev='eth0'), 'forward_dev needs'),
    (dict(ipv4=ipv4('192.168.100.1')), None),
    (dict(ipv4=ipv4('fd00::1/64')), 'it is an IPv6 address'),
    (dict(ipv4=ipv4('300.1.1.1/24')), 'Invalid ipv4 address'),
    (dict(ipv4=ipv4(hosts=[(None, '192.168.100.11', 'one')])), 'needs its mac'),
])
def test_inconsistent_options_are_refused(options, text):
    if text is None:  # a bare address is a /32: accepted as written
        assert N.network_xml(params(**options)).find('ip').get('prefix') == '32'
        return
    with pytest.raises(OperationFailed, match=text):
        N.network_xml(params(**options))


@pytest.mark.parametrize('ranges,hosts,text', [
    ((('192.168.100.100', '192.168.100.150'), ('192.168.100.150', '192.168.100.199')), (), 'overlaps'),
    ((('192.168.100.100', '192.168.101.10'),), (), 'outside the network 192.168.100.0/24'),
    ((('192.168.100.150', '192.168.100.100'),), (), 'start is after the end'),
    ((('192.168.100.1', '192.168.100.50'),), (), "network's own address"),
    ((), (('52:54:00:00:00:01', '10.0.0.5', None),), 'outside the network'),
    ((), (('52:54:00:00:00:01', '192.168.100.5', None), ('52:54:00:00:00:01', '192.168.100.6', None)),
     'mac 52:54:00:00:00:01 is given twice'),
])
def test_bad_addresses_are_refused(ranges, hosts, text):
    with pytest.raises(OperationFailed, match=text):
        N.check_addresses(N.network_xml(params(ipv4=ipv4(ranges=ranges, hosts=hosts))))


def test_gateway_must_be_a_host_address():
    with pytest.raises(OperationFailed, match='network or broadcast address'):
        N.check_addresses(N.network_xml(params(ipv4=ipv4('192.168.100.0/24', ranges=()))))


def test_overlapping_subnets():
    ours = [ipaddress.ip_network('172.30.0.0/16'), ipaddress.ip_network('fd00::/64')]
    theirs = [(ipaddress.ip_network('172.30.5.0/24'), 'network a'), (ipaddress.ip_network('10.0.0.0/8'), 'b'),
              (ipaddress.ip_network('fd00::/48'), 'network c')]
    assert [(str(o), str(t), w) for o, t, w in N.overlapping_subnets(ours, theirs)] == [
        ('172.30.0.0/16', '172.30.5.0/24', 'network a'), ('fd00::/64', 'fd00::/48', 'network c')]


def spec_params(**options):
    base = params(**options)
    base.update(state='active', autostart=None, force=False, restart_on_change=False)
    base.setdefault('xml', None)
    return base


@pytest.mark.parametrize('options,text', [
    (dict(xml='<network><name>lab</name>', name=None), 'Invalid network XML: xml is not well-formed'),
    (dict(xml='<domain><name>lab</name></domain>', name=None), 'the root element is <domain>, expected <network>'),
    (dict(xml='<network/>', name=None), 'Invalid network XML: it has no <name>'),
    (dict(xml='<network><name>other</name></network>'), "name 'lab' disagrees with the <name> 'other' in xml"),
    (dict(name=None), 'one of name or xml is required'),
    (dict(name=None, forward_mode='nat'), 'name is required with structured network options'),
])
def test_declaration_errors(options, text):
    with pytest.raises(OperationFailed, match=text):
        N.NetworkSpec(spec_params(**options))


def test_a_declaration_from_xml_or_options():
    assert N.NetworkSpec(spec_params(xml='<network><name>lab</name></network>', name=None)).name == 'lab'
    spec = N.NetworkSpec(spec_params(forward_mode='route', ipv4=ipv4()))
    assert spec.name == 'lab' and spec.forward_mode == 'route'


def test_a_declaration_is_compared_as_libvirt_writes_it():
    spec = N.NetworkSpec(spec_params(xml="<network><name>lab</name><mac address='52:54:00:AB:CD:EF'/></network>",
                                     name=None))
    assert spec.declared.find('mac').get('address') == '52:54:00:ab:cd:ef'
    with pytest.raises(OperationFailed, match="route forwarding requested, but no IP address provided for network 'lab'"):
        N.NetworkSpec(spec_params(forward_mode='route'))


def test_the_forward_dev_libvirt_derives_for_macvtap_is_no_difference():
    declared = N.network_xml(params(forward_mode='macvtap', forward_dev='eth1'))
    stored = _xml.parse_xml("<network><name>lab</name><uuid>0f0e0d0c-0b0a-4908-8706-050403020100</uuid>"
                            "<forward dev='eth1' mode='bridge'><interface dev='eth1'/></forward></network>")
    assert N.differences(declared, stored) == []
    other = N.network_xml(params(forward_mode='macvtap', forward_dev='eth2'))
    assert N.differences(other, stored) == [
        '/network/forward[mode=bridge]/interface[dev=eth1]: removed',
        '/network/forward[mode=bridge]/interface[dev=eth2]: added']


def test_a_dhcp_host_goes_to_its_ip_in_the_running_network_whatever_the_declared_order():
    live = _xml.parse_xml("<network><name>lab</name><ip address='192.168.100.1' prefix='24'/>"
                          "<ip family='ipv6' address='fd00::1' prefix='64'/></network>")
    declared = _xml.parse_xml("<network><name>lab</name><ip family='ipv6' address='fd00::1' prefix='64'>"
                              "<dhcp><host name='six' ip='fd00::5'/></dhcp></ip>"
                              "<ip address='192.168.100.1' prefix='24'/></network>")
    deletions, additions = N.host_updates(declared, live)
    assert deletions == [] and [(e.section, e.parent_index) for e in additions] == [('dhcp-host', 1)]
