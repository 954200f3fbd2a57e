# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""libvirt virtual networks: converge one, describe them, and the guest
addresses they (or an agent, or the ARP table) know.

Network XML is compared by its own rules, not the domain rules of `_xml`:

* libvirt fills in a network's uuid, bridge (name, stp, delay), MAC and the
  NAT port range; when the declaration leaves them out they are libvirt's
  and never count as a change, and a redefinition keeps them (no churn);
* everything else the declaration is complete: an element libvirt has and
  the declaration lacks (a forward mode when the network is now isolated, a
  DHCP range, a static host, a DNS entry) is a difference;
* order does not matter (DHCP hosts added live go to the end of the list).

On an active network, DHCP-host and DNS-host changes are applied live with
virNetworkUpdate; any other change waits for a restart (`pending_restart`),
done only with `restart_on_change`.  Everything that can be refused (bad
addresses, overlapping ranges, a missing host bridge, a network guests
use) is refused while planning, before anything changes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import copy
import ipaddress
import os

from ansible_collections.lifecycle.libvirt.plugins.module_utils import _xml
from ansible_collections.lifecycle.libvirt.plugins.module_utils._changes import Changes, diff_entry
from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import LibvirtClient, OperationFailed, libvirt
from ansible_collections.lifecycle.libvirt.plugins.module_utils._domain import describe_domains
from ansible_collections.lifecycle.libvirt.plugins.module_utils._wait import WaitTimeout, wait_until

NETWORK_STATES = ('present', 'absent', 'active', 'inactive')
FORWARD_MODES = ('nat', 'route', 'isolated', 'open', 'bridge', 'macvtap')
# Linux limits interface names to 15 characters (IFNAMSIZ - 1).
MAX_BRIDGE_NAME = 15

_HOST_SPEC = dict(mac=dict(type='str'), ip=dict(type='str', required=True), name=dict(type='str'))
_IP_SPEC = dict(
    address=dict(type='str', required=True),
    dhcp_ranges=dict(type='list', elements='dict', default=[],
                     options=dict(start=dict(type='str', required=True), end=dict(type='str', required=True))),
    dhcp_hosts=dict(type='list', elements='dict', default=[], options=_HOST_SPEC),
)
STRUCTURED_OPTIONS = ('forward_mode', 'bridge', 'forward_dev', 'ipv4', 'ipv6', 'dns_hosts', 'domain', 'mtu')

NETWORK_ARGUMENT_SPEC = dict(
    name=dict(type='str'),
    xml=dict(type='str'),
    state=dict(type='str', default='active', choices=list(NETWORK_STATES)),
    autostart=dict(type='bool'),
    force=dict(type='bool', default=False),
    restart_on_change=dict(type='bool', default=False),
    forward_mode=dict(type='str', choices=list(FORWARD_MODES)),
    bridge=dict(type='str'),
    forward_dev=dict(type='str'),
    ipv4=dict(type='dict', options=_IP_SPEC),
    ipv6=dict(type='dict', options=_IP_SPEC),
    dns_hosts=dict(type='list', elements='dict',
                   options=dict(ip=dict(type='str', required=True),
                                hostnames=dict(type='list', elements='str', required=True))),
    domain=dict(type='str'),
    mtu=dict(type='int'),
)
NETWORK_MUTUALLY_EXCLUSIVE = [('xml', option) for option in STRUCTURED_OPTIONS]

NETWORK_INFO_ARGUMENT_SPEC = dict(
    name=dict(type='str'),
    include_xml=dict(type='bool', default=False),
)

ADDRESS_SOURCES = ('lease', 'agent', 'arp')
ADDRESS_ARGUMENT_SPEC = dict(
    address_source=dict(type='str', default='lease', choices=list(ADDRESS_SOURCES)),
    wait_for_address=dict(type='bool', default=False),
    address_timeout=dict(type='int', default=120),
)
DOMAIN_INFO_ARGUMENT_SPEC = dict(
    ADDRESS_ARGUMENT_SPEC,
    name=dict(type='str'),
    include_xml=dict(type='bool', default=False),
)

# Elements under <network> that libvirt adds by itself when they are not
# declared, and attributes/children it adds to declared elements.
_FILLED_CHILDREN = {'network': ('uuid', 'mac', 'bridge'), 'forward': ('nat', 'interface', 'pf', 'address')}
_FILLED_ATTRIBUTES = {'network': ('connections', 'ipv6'), 'bridge': ('stp', 'delay'), 'forward': ('dev',),
                      'interface': ('connections',), 'pf': ('connections',)}
# Forward modes whose network has a bridge of its own, made by libvirt.
_OWN_BRIDGE_MODES = (None, 'nat', 'route', 'open')

# Steps (the `actions` a result lists).
DEFINE = 'define'
START = 'start'
STOP = 'stop'
UPDATE_LIVE = 'update_live'
SET_AUTOSTART = 'set_autostart'
UNDEFINE = 'undefine'


# Declaring ---------------------------------------------------------------------

class NetworkSpec:
    """The declared network (XML or structured options), validated offline."""

    def __init__(self, params):
        self.state = params['state']
        self.autostart = params['autostart']
        self.force = params['force']
        self.restart_on_change = params['restart_on_change']
        self.declared = None
        try:
            if params['xml'] is not None:
                self.declared = _xml.parse_declaration(params['xml'], 'network')
            elif any(params[option] is not None for option in STRUCTURED_OPTIONS):
                if not params['name']:
                    raise OperationFailed('name is required with structured network options')
                self.declared = network_xml(params)
            self.name = _xml.declared_name(params['name'], self.declared, 'network')
        except _xml.XMLError as exc:
            raise OperationFailed(str(exc))
        if self.declared is not None:
            check_addresses(self.declared)
            self.declared = as_libvirt_writes_it(self.declared)

    @property
    def forward_mode(self):
        return forward_mode(self.declared)


def forward_mode(network):
    """The forward mode of a network element; None for an isolated network."""
    forward = network.find('forward')
    if forward is None:
        return None
    mode = forward.get('mode', 'nat')
    # libvirt spells a macvtap network as mode='bridge' without a <bridge>.
    return 'macvtap' if mode == 'bridge' and network.find('bridge') is None else mode


def _sub(parent, tag, text=None, **attributes):
    element = _xml.etree.SubElement(parent, tag, **dict((k, str(v)) for k, v in attributes.items() if v is not None))
    if text is not None:
        element.text = text
    return element


def network_xml(params):
    """The <network> element the structured options describe."""
    network = _xml.etree.Element('network')
    _sub(network, 'name', params['name'])
    mode, dev = params['forward_mode'], params['forward_dev']
    if mode == 'macvtap' and (not dev or params['bridge'] is not None):
        raise OperationFailed('forward_mode=macvtap needs forward_dev, the host interface to attach to, '
                              'and no bridge')
    if dev is not None and mode in (None, 'isolated', 'bridge'):
        raise OperationFailed('forward_dev needs forward_mode nat, route, open or macvtap')
    if mode == 'macvtap':
        _sub(_sub(network, 'forward', mode='bridge'), 'interface', dev=dev)
    elif mode not in (None, 'isolated'):
        _sub(network, 'forward', mode=mode, dev=dev)
    if params['bridge'] is not None:
        _sub(network, 'bridge', name=params['bridge'])
    elif mode == 'bridge':
        raise OperationFailed('forward_mode=bridge needs bridge, the name of an existing host bridge')
    if params['mtu'] is not None:
        _sub(network, 'mtu', size=params['mtu'])
    if params['domain'] is not None:
        _sub(network, 'domain', name=params['domain'])
    if params['dns_hosts']:
        dns = _sub(network, 'dns')
        for entry in params['dns_hosts']:
            host = _sub(dns, 'host', ip=entry['ip'])
            for hostname in entry['hostnames']:
                _sub(host, 'hostname', hostname)
    for family in ('ipv4', 'ipv6'):
        if params[family] is not None:
            _ip_element(network, family, params[family])
    return network


def _ip_element(network, family, options):
    try:
        interface = ipaddress.ip_interface(options['address'])
    except ValueError as exc:
        raise OperationFailed('Invalid %s address %r: %s (write it as address/prefix, e.g. 192.168.100.1/24)'
                              % (family, options['address'], exc))
    if (interface.version == 4) != (family == 'ipv4'):
        raise OperationFailed('Invalid %s address %r: it is an IPv%d address'
                              % (family, options['address'], interface.version))
    ip = _sub(network, 'ip', family='ipv6' if family == 'ipv6' else None, address=interface.ip,
              prefix=interface.network.prefixlen)
    if options['dhcp_ranges'] or options['dhcp_hosts']:
        dhcp = _sub(ip, 'dhcp')
        for dhcp_range in options['dhcp_ranges']:
            _sub(dhcp, 'range', start=dhcp_range['start'], end=dhcp_range['end'])
        for host in options['dhcp_hosts']:
            if family == 'ipv4' and not host['mac']:
                raise OperationFailed('Invalid DHCP host %s: an IPv4 static host needs its mac' % host['ip'])
            _sub(dhcp, 'host', mac=host['mac'], name=host['name'], ip=host['ip'])


def _address(text, what):
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise OperationFailed('Invalid %s %r: not an IP address' % (what, text))


def ip_networks(network):
    """[(ip element, ipaddress network)] of a <network> element."""
    found = []
    for ip in network.findall('ip'):
        address = _address(ip.get('address'), 'ip address')
        if ip.get('prefix') is not None:
            suffix = ip.get('prefix')
        elif ip.get('netmask') is not None:
            suffix = ip.get('netmask')
        else:
            suffix = '64' if address.version == 6 else '24'
        try:
            found.append((ip, ipaddress.ip_interface('%s/%s' % (address, suffix)).network))
        except ValueError as exc:
            raise OperationFailed('Invalid address %s/%s: %s' % (address, suffix, exc))
    return found


def check_addresses(network):
    """Refuse DHCP ranges and hosts outside their network, ranges that
    overlap, and hosts given twice; without a daemon (pure)."""
    for ip, subnet in ip_networks(network):
        gateway = _address(ip.get('address'), 'ip address')
        if gateway in (subnet.network_address, subnet.broadcast_address) and subnet.num_addresses > 2:
            raise OperationFailed('Invalid address %s: it is the network or broadcast address of %s, not a host '
                                  'address' % (gateway, subnet))
        ranges = []
        for dhcp_range in ip.findall('dhcp/range'):
            start = _address(dhcp_range.get('start'), 'DHCP range start')
            end = _address(dhcp_range.get('end'), 'DHCP range end')
            for end_point in (start, end):
                if end_point not in subnet:
                    raise OperationFailed('Invalid DHCP range %s-%s: %s is outside the network %s'
                                          % (start, end, end_point, subnet))
            if start > end:
                raise OperationFailed('Invalid DHCP range %s-%s: the start is after the end' % (start, end))
            if start <= gateway <= end:
                raise OperationFailed('Invalid DHCP range %s-%s: it contains the network\'s own address %s'
                                      % (start, end, gateway))
            for other_start, other_end in ranges:
                if start <= other_end and other_start <= end:
                    raise OperationFailed('Invalid DHCP ranges: %s-%s overlaps %s-%s'
                                          % (start, end, other_start, other_end))
            ranges.append((start, end))
        seen = {}
        for host in ip.findall('dhcp/host'):
            address = _address(host.get('ip'), 'DHCP host address')
            if address not in subnet:
                raise OperationFailed('Invalid DHCP host %s: the address is outside the network %s'
                                      % (address, subnet))
            if address == gateway:
                raise OperationFailed('Invalid DHCP host %s: it is the network\'s own address' % address)
            for key in ('ip', 'mac', 'name'):
                value = host.get(key)
                if value is not None and (key, value.lower()) in seen:
                    raise OperationFailed('Invalid DHCP hosts: %s %s is given twice' % (key, value))
                if value is not None:
                    seen[(key, value.lower())] = True


def overlapping_subnets(declared_subnets, other_subnets):
    """[(ours, theirs, what)] of declared subnets that overlap another
    network's, `other_subnets` being [(subnet, what)]."""
    return [(ours, theirs, what) for ours in declared_subnets for theirs, what in other_subnets
            if ours.version == theirs.version and ours.overlaps(theirs)]


# Comparing ---------------------------------------------------------------------

def without_filled_in(actual, declared):
    """A copy of libvirt's element without what libvirt filled in and the
    declaration leaves out (recursively, along declared elements)."""
    actual = copy.deepcopy(actual)
    _strip(actual, declared)
    return actual


def _strip(actual, declared):
    for name in _FILLED_ATTRIBUTES.get(actual.tag, ()):
        if declared is None or declared.get(name) is None:
            actual.attrib.pop(name, None)
    for child in list(actual):
        counterpart = declared.find(child.tag) if declared is not None else None
        if counterpart is None and child.tag in _FILLED_CHILDREN.get(actual.tag, ()):
            actual.remove(child)
        else:
            _strip(child, counterpart)


def _label(element):
    attributes = ','.join('%s=%s' % item for item in sorted(element.attrib.items()))
    text = (element.text or '').strip()
    return '%s%s%s' % (element.tag, '[%s]' % attributes if attributes else '', '=%s' % text if text else '')


def _paths(element, prefix=''):
    path = '%s/%s' % (prefix, _label(element))
    yield path
    for child in element:
        yield from _paths(child, path)


def differences(declared, actual):
    """Readable differences between a declared network and libvirt's, order
    and libvirt's fill-ins ignored; empty when they are the same."""
    wanted = collections.Counter(_paths(declared))
    have = collections.Counter(_paths(without_filled_in(actual, declared)))
    removed = sorted((have - wanted).elements())
    added = sorted((wanted - have).elements())
    return ['%s: removed' % path for path in removed] + ['%s: added' % path for path in added]


def merged_definition(declared, actual):
    """The declaration completed with what libvirt generated (uuid, MAC, the
    bridge it picked), so that redefining churns nothing."""
    merged = copy.deepcopy(declared)
    if actual is None:
        return merged
    # Each goes right after <name>: inserted last first, they read uuid, mac, bridge.
    if merged.find('bridge') is None and actual.find('bridge') is not None \
            and forward_mode(merged) in _OWN_BRIDGE_MODES and forward_mode(actual) in _OWN_BRIDGE_MODES:
        merged.insert(1, copy.deepcopy(actual.find('bridge')))
    for tag in ('mac', 'uuid'):
        if merged.find(tag) is None and actual.find(tag) is not None:
            merged.insert(1, copy.deepcopy(actual.find(tag)))
    return merged


# Live updates: DHCP hosts and DNS hosts ----------------------------------------

class HostEntry:
    """One DHCP host or DNS host: what virNetworkUpdate needs to add or
    delete it."""

    def __init__(self, section, ip_address, element):
        self.section = section
        self.ip_address = ip_address  # of the <ip> a DHCP host belongs to
        self.parent_index = -1  # that <ip>'s index in the running network, set by host_updates
        self.xml = _xml.etree.tostring(element, encoding='unicode')
        self.key = (section, ip_address, tuple(sorted(_paths(element))))

    def describe(self):
        return self.xml.strip()


def split_hosts(network):
    """(the network without its DHCP and DNS hosts, [HostEntry])."""
    rest = copy.deepcopy(network)
    entries = []
    for ip in rest.findall('ip'):
        for host in ip.findall('dhcp/host'):
            entries.append(HostEntry('dhcp-host', str(_address(ip.get('address'), 'ip address')), host))
            host.getparent().remove(host)
    for host in rest.findall('dns/host'):
        entries.append(HostEntry('dns-host', None, host))
        host.getparent().remove(host)
    # <dns> or <dhcp> holding only hosts: libvirt adds and drops it with them.
    for holder in rest.findall('dns') + rest.findall('ip/dhcp'):
        if len(holder) == 0 and not holder.attrib:
            holder.getparent().remove(holder)
    return rest, entries


def host_updates(declared, live):
    """The live updates that turn `live` into `declared`: ([to delete],
    [to add]) of HostEntry, or None when other things differ too."""
    declared_rest, declared_hosts = split_hosts(declared)
    live_rest, live_hosts = split_hosts(live)
    if differences(declared_rest, live_rest):
        return None
    wanted = set(entry.key for entry in declared_hosts)
    have = set(entry.key for entry in live_hosts)
    # The rest is the same, so every declared <ip> is in the running network.
    live_ips = [str(_address(ip.get('address'), 'ip address')) for ip in live.findall('ip')]
    for entry in declared_hosts + live_hosts:
        if entry.ip_address is not None:
            entry.parent_index = live_ips.index(entry.ip_address)
    return ([entry for entry in live_hosts if entry.key not in wanted],
            [entry for entry in declared_hosts if entry.key not in have])


# Observing ---------------------------------------------------------------------

def _network_facts_xml(client, network, flags=0):
    return _xml.parse_xml(client.call('read network %s' % network.name(), network.XMLDesc, flags), 'network XML')


def network_users(client, network):
    """Names of the running domains plugged into `network`, from libvirt's
    own record of the network's ports."""
    users = set()
    for port in client.call('list the ports of network %s' % network.name(), network.listAllPorts, 0):
        try:
            port_xml = client.call('read a port of network %s' % network.name(), port.XMLDesc, 0)
        except OperationFailed as exc:
            if exc.libvirt_code == libvirt.VIR_ERR_NO_NETWORK_PORT:
                continue  # the port went away while we looked
            raise
        owner = _xml.parse_xml(port_xml, 'network port XML').findtext('owner/name')
        if owner:
            users.add(owner)
    return sorted(users)


def _other_subnets(client, name):
    found = []
    for network in client.networks():
        if network.name() == name:
            continue
        try:
            root = _network_facts_xml(client, network)
        except OperationFailed as exc:
            if exc.libvirt_code == libvirt.VIR_ERR_NO_NETWORK:
                continue  # a transient network that stopped while we looked
            raise
        found += [(subnet, 'network %s' % network.name()) for _ip, subnet in ip_networks(root)]
    return found


def _host_interface_type(client, name):
    """'bridge', 'ethernet', ... for a host interface libvirt sees, or None."""
    interface = client.host_interface(name)
    if interface is None:
        return None
    root = _xml.parse_xml(client.call('read host interface %s' % name, interface.XMLDesc, 0), 'interface XML')
    return root.get('type')


def as_libvirt_writes_it(declared):
    """`declared` as libvirt's own network parser writes it back (MACs in
    lower case, values in their canonical spelling), without what the parser
    filled in that the declaration leaves out (uuid, MAC, bridge...): defined
    under a scratch name in the in-process test driver, where nothing on any
    host changes, as the domains are normalised.  Test: the documentation
    examples of tests/integration/test_network_corpus.py.  libvirt's refusal is an
    OperationFailed that names the network."""
    name = declared.findtext('name')
    scratch = copy.deepcopy(declared)
    scratch_name = 'lifecycle-libvirt-check-%d' % os.getpid()
    scratch.find('name').text = scratch_name
    parser = LibvirtClient(_xml.NORMALISING_URI)
    try:
        network = parser.define_network(_xml.to_text(scratch), 'network %s: libvirt does not accept the XML'
                                        % scratch_name)
        try:
            written = _xml.parse_xml(parser.call('read network %s' % scratch_name, network.XMLDesc, 0), 'network XML')
        finally:
            parser.call('undefine network %s' % scratch_name, network.undefine)
    except OperationFailed as exc:
        if exc.libvirt_code in (libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_OPERATION_UNSUPPORTED):
            return declared  # what this driver lacks is for the real one to say
        raise OperationFailed(str(exc).replace(scratch_name, name))
    finally:
        parser.close()
    written.find('name').text = name
    # The test driver knows no driver's own XML namespace (the network
    # driver's <dnsmasq:options>): those elements stay as declared.
    for extension in declared:
        if isinstance(extension.tag, str) and extension.tag.startswith('{') and written.find(extension.tag) is None:
            written.append(copy.deepcopy(extension))
    return without_filled_in(written, declared)


def preflight(client, spec):
    """What libvirt would refuse only when the network starts, or after
    defining it: checked first, so that nothing changes."""
    declared, name = spec.declared, spec.name
    mode = spec.forward_mode
    bridge = _xml.attribute_of(declared, 'bridge', 'name')
    if mode == 'bridge' and bridge is not None and _host_interface_type(client, bridge) != 'bridge':
        raise OperationFailed('Failed to define network %s: the host has no bridge %s (forward_mode=bridge '
                              'attaches to an existing bridge)' % (name, bridge))
    devices = [declared.find('forward').get('dev')] if declared.find('forward') is not None else []
    devices += [interface.get('dev') for interface in declared.findall('forward/interface')]
    for dev in sorted(set(d for d in devices if d)):
        if _host_interface_type(client, dev) is None:
            raise OperationFailed('Failed to define network %s: the host has no interface %s' % (name, dev))
    if mode in _OWN_BRIDGE_MODES and bridge is not None and len(bridge) > MAX_BRIDGE_NAME:
        raise OperationFailed('Failed to define network %s: the bridge name %s is longer than %d characters'
                              % (name, bridge, MAX_BRIDGE_NAME))
    overlaps = overlapping_subnets([subnet for _ip, subnet in ip_networks(declared)], _other_subnets(client, name))
    if overlaps:
        raise OperationFailed('Failed to define network %s: its addresses overlap those of another network: %s'
                              % (name, '; '.join('%s overlaps %s of %s' % o for o in overlaps)))


# Converging --------------------------------------------------------------------

def _fields(exists, active, autostart, persistent):
    """A network's state as the (name, value) pairs of its diff."""
    return [('state', 'absent' if not exists else ('active' if active else 'inactive')),
            ('autostart', bool(autostart)), ('persistent', bool(persistent))]


def converge_network(client, params, check_mode):
    """Bring one network to the declared state and definition; two runs
    for one network take turns (LibvirtClient.exclusive)."""
    spec = NetworkSpec(params)
    with client.exclusive('network', spec.name):
        return NetworkConvergence(client, spec, Changes(check_mode)).run()


class NetworkConvergence:
    def __init__(self, client, spec, changes):
        self.client = client
        self.spec = spec
        self.changes = changes
        self.name = spec.name
        self.network = None

    def _observe(self):
        call = self.client.call
        self.network = self.client.network(self.name)
        network = self.network
        if network is None:
            return dict(exists=False, active=False, persistent=False, autostart=False)
        persistent = bool(call('read network %s' % self.name, network.isPersistent))
        return dict(exists=True, active=bool(call('read network %s' % self.name, network.isActive)),
                    persistent=persistent,
                    autostart=persistent and bool(call('read autostart of network %s' % self.name,
                                                       network.autostart)))

    def _refuse_if_used(self, what):
        users = network_users(self.client, self.network)
        if users and not self.spec.force:
            raise OperationFailed('Failed to %s network %s: running domain(s) %s use it; set force=true to do it '
                                  'anyway (they lose their connection)' % (what, self.name, ', '.join(users)))

    def _plan(self, observed):
        """(steps, live host updates, pending_restart, current definition, differences)."""
        spec, steps = self.spec, []
        updates, pending, current, found = None, False, None, []
        if spec.state == 'absent':
            if observed['exists']:
                if observed['active']:
                    self._refuse_if_used('remove')
                    steps.append(STOP)
                if observed['persistent']:
                    steps.append(UNDEFINE)
            return steps, updates, pending, current, found
        if not observed['exists'] and spec.declared is None:
            raise OperationFailed('network %s does not exist; xml or the structured options are required to '
                                  'create it' % self.name)
        will_be_active = observed['active']
        if spec.declared is not None:
            flags = libvirt.VIR_NETWORK_XML_INACTIVE if observed['persistent'] else 0
            current = _network_facts_xml(self.client, self.network, flags) if observed['exists'] else None
            found = differences(spec.declared, current) if current is not None else []
            if current is None or found or not observed['persistent']:
                preflight(self.client, spec)
                steps.append(DEFINE)
        if spec.state == 'active' and not observed['active']:
            steps.append(START)
            will_be_active = True
        elif spec.state == 'inactive' and observed['active']:
            self._refuse_if_used('stop')
            steps.append(STOP)
            will_be_active = False
        if spec.declared is not None and observed['active'] and will_be_active:
            live = _network_facts_xml(self.client, self.network)
            if differences(spec.declared, live):
                updates = host_updates(spec.declared, live)
                if updates is None:
                    pending = True
                    if spec.restart_on_change:
                        self._refuse_if_used('restart')
                        steps += [STOP, START]
                        pending = False
                else:
                    steps += [UPDATE_LIVE] * bool(updates[0] or updates[1])
        if spec.autostart is not None and spec.autostart != observed['autostart']:
            steps.append(SET_AUTOSTART)
        return steps, updates, pending, current, found

    def _predicted(self, observed, steps):
        if self.spec.state == 'absent':
            return dict(exists=False, active=False, persistent=False, autostart=False)
        active = {'active': True, 'inactive': False}.get(self.spec.state, observed['active'])
        persistent = observed['persistent'] or DEFINE in steps
        autostart = self.spec.autostart if self.spec.autostart is not None else observed['autostart']
        return dict(exists=True, active=active, persistent=persistent, autostart=bool(autostart) and persistent)

    def run(self):
        observed = self._observe()
        steps, updates, pending, current, found = self._plan(observed)
        predicted = self._predicted(observed, steps)
        diff = [diff_entry('network %s' % self.name, _fields(**observed), _fields(**predicted))]
        define_xml = None
        if self.spec.declared is not None and self.spec.state != 'absent':
            define_xml = _xml.to_text(merged_definition(self.spec.declared, current))
            diff.append(diff_entry('%s XML (stored definition)' % self.name,
                                   _xml.to_text(current) if current is not None else '', define_xml,
                                   after_header='%s XML (declared)' % self.name))
        result = dict(name=self.name, actions=self.changes.actions, diff=diff, differences=found,
                      live_updates=[('delete ' if i == 0 else 'add ') + entry.describe()
                                    for i, group in enumerate(updates or ([], [])) for entry in group])
        with self.changes.reporting(result):
            try:
                for step in steps:
                    self.changes.apply(step, self._perform, step, define_xml, updates)
            except OperationFailed:
                if not observed['exists'] and self.network is not None:
                    self._remove_refused_network()
                raise
        after = predicted if self.changes.check_mode else self._observe()
        result.update(state='absent' if not after['exists'] else ('active' if after['active'] else 'inactive'),
                      autostart=after['autostart'], persistent=after['persistent'],
                      bridge=self._bridge() if after['exists'] and not self.changes.check_mode else None,
                      pending_restart=pending)
        return result

    def _remove_refused_network(self):
        """A new network that libvirt would not start (its bridge or
        addresses are taken on the host): leave nothing behind, and report
        no change."""
        try:
            self.changes.apply(UNDEFINE, self._perform, UNDEFINE, None, None)
            del self.changes.actions[:]
        except OperationFailed:
            pass  # libvirt's first refusal is the one to report

    def _bridge(self):
        return _xml.attribute_of(_network_facts_xml(self.client, self.network), 'bridge', 'name')

    def _perform(self, step, define_xml, updates):
        name, call = self.name, self.client.call
        if step == DEFINE:
            self.network = self.client.define_network(define_xml, 'network %s' % name)
        elif step == START:
            call('start network %s' % name, self.network.create)
        elif step == STOP:
            call('stop network %s' % name, self.network.destroy)
        elif step == UPDATE_LIVE:
            deletions, additions = updates
            for command, entries in ((libvirt.VIR_NETWORK_UPDATE_COMMAND_DELETE, deletions),
                                     (libvirt.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST, additions)):
                for entry in entries:
                    section = (libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST if entry.section == 'dhcp-host'
                               else libvirt.VIR_NETWORK_SECTION_DNS_HOST)
                    call('update %s of network %s' % (entry.section, name), self.network.update, command, section,
                         entry.parent_index, entry.xml, libvirt.VIR_NETWORK_UPDATE_AFFECT_LIVE)
        elif step == SET_AUTOSTART:
            call('set autostart of network %s' % name, self.network.setAutostart, int(self.spec.autostart))
        elif step == UNDEFINE:
            call('undefine network %s' % name, self.network.undefine)


# Describing --------------------------------------------------------------------

def describe_networks(client, name=None, include_xml=False):
    """Facts about one network (`name`) or every network of the connection."""
    return client.describe('network', name, client.network, client.networks,
                           lambda network: _describe_network(client, network, include_xml), libvirt.VIR_ERR_NO_NETWORK)


def _describe_network(client, network, include_xml):
    name, call = network.name(), client.call
    what = 'read network %s' % name
    active = bool(call(what, network.isActive))
    persistent = bool(call(what, network.isPersistent))
    xml_text = call(what, network.XMLDesc, 0)
    root = _xml.parse_xml(xml_text, 'network XML')
    facts = dict(
        name=name,
        uuid=network.UUIDString(),
        state='active' if active else 'inactive',
        persistent=persistent,
        autostart=persistent and bool(call(what, network.autostart)),
        forward_mode=forward_mode(root) or 'isolated',
        bridge=_xml.attribute_of(root, 'bridge', 'name'),
        domain=_xml.attribute_of(root, 'domain', 'name'),
        mtu=int(_xml.attribute_of(root, 'mtu', 'size')) if root.find('mtu') is not None else None,
        addresses=[_describe_ip(ip, subnet) for ip, subnet in ip_networks(root)],
        dns_hosts=[dict(ip=host.get('ip'), hostnames=[h.text for h in host.findall('hostname')])
                   for host in root.findall('dns/host')],
        dhcp_leases=[_describe_lease(lease) for lease in call(
            'read the DHCP leases of network %s' % name, network.DHCPLeases)] if active else [],
        users=network_users(client, network) if active else [],
    )
    if include_xml:
        facts['xml'] = xml_text
    return facts


def _describe_ip(ip, subnet):
    return dict(family='ipv%d' % subnet.version, address=ip.get('address'), prefix=subnet.prefixlen,
                network=str(subnet),
                dhcp_ranges=[dict(start=r.get('start'), end=r.get('end')) for r in ip.findall('dhcp/range')],
                dhcp_hosts=[dict(mac=h.get('mac'), ip=h.get('ip'), name=h.get('name')) for h in ip.findall('dhcp/host')])


def _describe_lease(lease):
    family = {libvirt.VIR_IP_ADDR_TYPE_IPV4: 'ipv4', libvirt.VIR_IP_ADDR_TYPE_IPV6: 'ipv6'}.get(lease['type'])
    return dict(mac=lease['mac'], address=lease['ipaddr'], prefix=lease['prefix'], family=family,
                hostname=lease['hostname'], client_id=lease['clientid'], expiry_time=lease['expirytime'])


# Guest addresses ---------------------------------------------------------------

_ADDRESS_SOURCE_FLAGS = {'lease': 'VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE',
                         'agent': 'VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT',
                         'arp': 'VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP'}


def interface_addresses(client, domain, source):
    """{mac: [address dict]} of a running domain, as libvirt's
    interfaceAddresses reports them from `source` (lease, agent or arp).
    A source that knows nothing (no agent, no lease yet) gives {}."""
    try:
        reported = client.call('read the interface addresses of domain %s from the %s source' % (domain.name(), source),
                               domain.interfaceAddresses, getattr(libvirt, _ADDRESS_SOURCE_FLAGS[source]), 0)
    except OperationFailed as exc:
        if exc.libvirt_code in (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_OPERATION_INVALID):
            return {}  # it stopped, or is not running
        if source == 'agent' and exc.libvirt_code in (libvirt.VIR_ERR_AGENT_UNRESPONSIVE,
                                                      libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED):
            return {}  # no guest agent: it knows no address
        raise
    found = {}
    for interface in (reported or {}).values():
        mac = (interface.get('hwaddr') or '').lower()
        found.setdefault(mac, []).extend(
            dict(address=a['addr'], prefix=a['prefix'], source=source,
                 family='ipv6' if a['type'] == libvirt.VIR_IP_ADDR_TYPE_IPV6 else 'ipv4')
            for a in interface.get('addrs') or [])
    return found


def add_addresses(client, facts, source):
    """Give each interface of each described domain (domain_info's facts)
    its `addresses`; a stopped domain's interfaces have none."""
    for domain_facts in facts:
        known = {}
        if domain_facts['state'] in ('running', 'paused'):
            domain = client.domain(domain_facts['name'])
            if domain is not None:
                known = interface_addresses(client, domain, source)
        for interface in domain_facts['interfaces']:
            interface['addresses'] = known.get((interface['mac'] or '').lower(), [])
    return facts


def wait_for_address(client, name, source, timeout):
    """Wait until the running domain `name` has an address from `source`;
    a clear failure naming it when it does not within `timeout` seconds."""
    domain = client.domain(name)
    if domain is None:
        raise OperationFailed('Failed to wait for an address of domain %s: no domain with that name at %s'
                              % (name, client.uri))

    def has_address():
        if not client.is_active(domain):
            raise OperationFailed('Failed to wait for an address of domain %s: it is not running' % name)
        return any(interface_addresses(client, domain, source).values())

    try:
        return wait_until(has_address, timeout, 'an address', interval=1.0)
    except WaitTimeout as exc:
        raise OperationFailed('Timed out after %.0f s waiting for an IP address of domain %s (source: %s); is it '
                              'on a network with DHCP, or does it run a guest agent?' % (exc.elapsed, name, source))


def domain_facts(client, params):
    """domain_info's facts with each interface's addresses, after waiting
    for one when asked."""
    if params['wait_for_address']:
        wait_for_address(client, params['name'], params['address_source'], params['address_timeout'])
    return add_addresses(client, describe_domains(client, params['name'], params['include_xml']),
                         params['address_source'])
