#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: domain_info
short_description: Facts about one or all libvirt domains
version_added: 0.1.0
description:
  - Reads the state, definition summary and optionally the XML of one domain, or
    of every domain of a libvirt URI.
extends_documentation_fragment:
  - lifecycle.libvirt.connection
  - lifecycle.libvirt.attributes
  - lifecycle.libvirt.attributes.info_module
options:
  name:
    description:
      - Name of the domain. Without it, every domain is listed.
      - A name libvirt does not know fails the task.
    type: str
  include_xml:
    description: Add each domain's live XML to its facts.
    type: bool
    default: false
  address_source:
    description:
      - Where the C(addresses) of each interface in RV(domains[].interfaces) come from, as libvirt's
        interfaceAddresses reads them - V(lease) the DHCP leases of the libvirt network it is plugged
        into, V(agent) the QEMU guest agent, V(arp) the host's ARP table.
      - Stopped domains have no addresses.
    type: str
    choices: [lease, agent, arp]
    default: lease
  wait_for_address:
    description:
      - Wait until the running domain O(name) has at least one address from O(address_source) before
        reading the facts. Needs O(name).
      - Fails naming the domain when none appears within O(address_timeout), or when it is not running.
    type: bool
    default: false
  address_timeout:
    description: Seconds O(wait_for_address) waits.
    type: int
    default: 120
seealso:
  - module: lifecycle.libvirt.domain
author:
  - lifecycle.libvirt contributors (@lifecycle-libvirt)
'''

EXAMPLES = r'''
- name: Every domain of the local hypervisor
  lifecycle.libvirt.domain_info:
  register: all_domains

- name: One domain, with its XML
  lifecycle.libvirt.domain_info:
    name: web01
    include_xml: true
  register: web01

- name: Wait until web01 has a DHCP lease, then use its address
  lifecycle.libvirt.domain_info:
    name: web01
    wait_for_address: true
    address_timeout: 180
  register: web01

- name: Its first address
  ansible.builtin.debug:
    msg: "{{ web01.domains[0].interfaces[0].addresses[0].address }}"

- name: Show the running ones
  ansible.builtin.debug:
    msg: "{{ all_domains.domains | selectattr('state', 'equalto', 'running') | map(attribute='name') }}"
'''

RETURN = r'''
domains:
  description: One entry per domain, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Domain name.
      type: str
      sample: web01
    uuid:
      description: Domain UUID.
      type: str
    state:
      description:
        - V(defined), V(running), V(paused), V(saved) (stopped with a managed save image),
          V(crashed) or V(pmsuspended) (suspended by the guest's power management).
      type: str
      sample: running
    persistent:
      description: Whether it stays defined when stopped.
      type: bool
    autostart:
      description: Whether it starts with the host.
      type: bool
    managed_save:
      description: Whether a managed save image exists.
      type: bool
    snapshot_count:
      description: Number of snapshots.
      type: int
    vcpus:
      description: Maximum number of virtual CPUs.
      type: int
    memory:
      description: Maximum memory in bytes.
      type: int
      sample: 268435456
    disks:
      description:
        - Disks - C(target), C(device), C(type), C(source) (path, device or pool/volume), C(format), and
          C(pool) and C(volume), the names of the storage volume the disk is, found by libvirt's own lookup
          (by path, or the pool and volume a volume disk names); both null when no active storage pool holds it.
      type: list
      elements: dict
      sample: [{target: vda, device: disk, type: file, source: /var/lib/libvirt/images/web01.qcow2, format: qcow2,
                pool: default, volume: web01.qcow2}]
    guest_agent:
      description:
        - The QEMU guest agent channel (C(org.qemu.guest_agent.0)) - C(configured) whether the domain has it,
          C(connected) whether libvirt reports the agent in the guest connected to it (only while the domain runs).
      type: dict
      sample: {configured: true, connected: true}
    interfaces:
      description:
        - Network interfaces - C(type), C(mac), C(source) (network, bridge or device), C(model), and
          C(addresses), each with C(address), C(prefix), C(family) and C(source) (see O(address_source)).
      type: list
      elements: dict
      sample: [{type: network, mac: "52:54:00:12:34:56", source: default, model: virtio,
                addresses: [{address: 192.168.122.45, prefix: 24, family: ipv4, source: lease}]}]
    xml:
      description: The live XML.
      type: str
      returned: when O(include_xml=true)
duration:
  description: Seconds the task took, measured on a monotonic clock.
  returned: always
  type: float
  sample: 0.02
'''

from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import LibvirtModule
from ansible_collections.lifecycle.libvirt.plugins.module_utils._network import DOMAIN_INFO_ARGUMENT_SPEC, domain_facts


def main():
    module = LibvirtModule(argument_spec=DOMAIN_INFO_ARGUMENT_SPEC, required_if=[('wait_for_address', True, ('name',))],
                           supports_check_mode=True)
    module.run(lambda client: dict(changed=False, domains=domain_facts(client, module.params)))


if __name__ == '__main__':
    main()
