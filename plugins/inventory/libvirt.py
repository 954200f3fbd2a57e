# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: libvirt
short_description: The domains of one or more libvirt hypervisors as inventory hosts
version_added: 0.1.0
description:
  - Every domain of every hypervisor in O(uris) becomes a host, named by its name or its UUID
    (O(inventory_hostname)), with host variables - C(libvirt_uri), C(libvirt_hypervisor) (the
    hypervisor's host name), C(libvirt_name), C(libvirt_uuid), C(libvirt_state), C(libvirt_autostart),
    C(libvirt_persistent), C(libvirt_vcpus), C(libvirt_memory) (bytes), C(libvirt_disks) (each with
    the C(pool) and C(volume) it is), C(libvirt_interfaces) (each with its C(addresses)),
    C(libvirt_guest_agent), C(libvirt_tags) (see O(tags_namespace)), and C(ansible_host), the first
    IPv4 address (else the first address) when one is known.
  - Hosts are grouped by hypervisor (C(hypervisor_<host name>)) and by state (C(state_<state>)) unless
    O(default_groups=false); O(compose), O(groups) and O(keyed_groups) add more.
  - A hypervisor that cannot be reached is skipped with a warning naming it (passwords in its URI
    masked), unless O(strict=true), which fails the inventory.
  - The inventory file's name must end with C(libvirt.yml) or C(libvirt.yaml).
extends_documentation_fragment:
  - constructed
  - inventory_cache
options:
  plugin:
    description: The name of this plugin.
    type: str
    required: true
    choices: [lifecycle.libvirt.libvirt]
  uris:
    description: libvirt connection URIs of the hypervisors, for example C(qemu+ssh://root@kvm01/system).
    type: list
    elements: str
    required: true
  inventory_hostname:
    description: Whether hosts are named by the domain's V(name) or its V(uuid).
    type: str
    choices: [name, uuid]
    default: name
  address_source:
    description:
      - Where guest addresses come from - V(lease) the DHCP leases of libvirt networks, V(agent)
        the QEMU guest agent, V(arp) the hypervisor's ARP table. Only running domains have addresses.
    type: str
    choices: [lease, agent, arp]
    default: lease
  default_groups:
    description: Add the C(hypervisor_<host name>) and C(state_<state>) groups.
    type: bool
    default: true
  tags_namespace:
    description:
      - XML namespace of the domain metadata element whose C(<tag>) children become C(libvirt_tags), e.g.
        C(<metadata><ll:tags xmlns:ll="https://github.com/lifecycle-libvirt/lifecycle.libvirt/xmlns/tags/1.0"><ll:tag>web</ll:tag></ll:tags></metadata>).
    type: str
    default: https://github.com/lifecycle-libvirt/lifecycle.libvirt/xmlns/tags/1.0
requirements:
  - libvirt-python >= 9.0 and lxml on the controller
'''

EXAMPLES = r'''
# fleet.libvirt.yml
plugin: lifecycle.libvirt.libvirt
uris:
  - qemu+ssh://root@kvm01.example.com/system
  - qemu+ssh://root@kvm02.example.com/system
keyed_groups:
  - key: libvirt_tags
    prefix: tag
compose:
  ansible_user: "'admin'"
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/lifecycle-libvirt-inventory
'''

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable

from ansible_collections.lifecycle.libvirt.plugins.module_utils import _xml
from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import (
    LIBVIRT_IMPORT_ERROR, LibvirtClient, OperationFailed, mask_uri)
from ansible_collections.lifecycle.libvirt.plugins.module_utils._domain import describe_domains
from ansible_collections.lifecycle.libvirt.plugins.module_utils._network import add_addresses


def metadata_tags(root, namespace):
    """The <tag> texts of the domain's metadata element in `namespace`."""
    tags = []
    for element in root.findall('metadata/{%s}tags' % namespace):
        tags += [(child.text or '').strip() for child in element if _xml.etree.QName(child).localname == 'tag']
    return [tag for tag in tags if tag]


def first_address(interfaces):
    """The first IPv4 address of the interfaces, else the first address, else None."""
    addresses = [address for interface in interfaces for address in interface.get('addresses', [])]
    for address in addresses:
        if address['family'] == 'ipv4':
            return address['address']
    return addresses[0]['address'] if addresses else None


def host_records(client, address_source, tags_namespace):
    """One record (the host variables) per domain of the client's hypervisor."""
    hypervisor = client.host_name
    records = []
    for facts in add_addresses(client, describe_domains(client, include_xml=True), address_source):
        root = _xml.parse_xml(facts.pop('xml'), 'domain XML')
        record = dict(('libvirt_%s' % key, value) for key, value in facts.items())
        record.update(libvirt_uri=client.uri, libvirt_hypervisor=hypervisor,
                      libvirt_tags=metadata_tags(root, tags_namespace))
        address = first_address(facts['interfaces'])
        if address is not None:
            record['ansible_host'] = address
        records.append(record)
    return records


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):

    NAME = 'lifecycle.libvirt.libvirt'

    def verify_file(self, path):
        return super(InventoryModule, self).verify_file(path) and path.endswith(('libvirt.yml', 'libvirt.yaml'))

    def parse(self, inventory, loader, path, cache=True):
        super(InventoryModule, self).parse(inventory, loader, path, cache)
        self._read_config_data(path)
        if LIBVIRT_IMPORT_ERROR is not None or _xml.LXML_IMPORT_ERROR is not None:
            raise AnsibleParserError('The lifecycle.libvirt.libvirt inventory needs libvirt-python and lxml on the '
                                     'controller')
        cache_key = self.get_cache_key(path)
        use_cache = self.get_option('cache') and cache
        records = None
        if use_cache:
            try:
                records = self._cache[cache_key]
            except KeyError:
                pass
        if records is None:
            records = self._query()
            if self.get_option('cache'):
                self._cache[cache_key] = records
        self._populate(records)

    def _query(self):
        records = []
        for uri in self.get_option('uris'):
            client = None
            try:
                client = LibvirtClient(uri)
                records += host_records(client, self.get_option('address_source'), self.get_option('tags_namespace'))
            except OperationFailed as exc:
                # LibvirtClient's messages show the URI masked already.
                message = 'lifecycle.libvirt.libvirt: hypervisor %s skipped: %s' % (mask_uri(uri), exc)
                if self.get_option('strict'):
                    raise AnsibleParserError(message)
                self.display.warning(message)
            finally:
                if client is not None:
                    client.close()
        return records

    def _populate(self, records):
        strict = self.get_option('strict')
        naming = self.get_option('inventory_hostname')
        seen = {}
        for record in records:
            host = record['libvirt_%s' % naming]
            if host in seen:
                self.display.warning('lifecycle.libvirt.libvirt: domain %s of %s skipped: a domain of that %s '
                                     'comes from %s already' % (host, record['libvirt_uri'], naming, seen[host]))
                continue
            seen[host] = record['libvirt_uri']
            self.inventory.add_host(host)
            for key, value in record.items():
                self.inventory.set_variable(host, key, value)
            if self.get_option('default_groups'):
                for group in ('hypervisor_%s' % record['libvirt_hypervisor'], 'state_%s' % record['libvirt_state']):
                    group = self.inventory.add_group(self._sanitize_group_name(group))
                    self.inventory.add_child(group, host)
            self._set_composite_vars(self.get_option('compose'), record, host, strict=strict)
            self._add_host_to_composed_groups(self.get_option('groups'), record, host, strict=strict)
            self._add_host_to_keyed_groups(self.get_option('keyed_groups'), record, host, strict=strict)
