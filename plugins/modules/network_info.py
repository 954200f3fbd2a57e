#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: network_info
short_description: Facts about one or all libvirt virtual networks
version_added: 0.1.0
description:
  - Reads the state, autostart, bridge, addresses, static hosts, DHCP leases and the running domains
    plugged into one network, or into every network of a libvirt URI.
extends_documentation_fragment:
  - lifecycle.libvirt.connection
  - lifecycle.libvirt.attributes
  - lifecycle.libvirt.attributes.info_module
options:
  name:
    description:
      - Name of the network. Without it, every network is listed.
      - A name libvirt does not know fails the task.
    type: str
  include_xml:
    description: Add each network's live XML to its facts.
    type: bool
    default: false
seealso:
  - module: lifecycle.libvirt.network
author:
  - lifecycle.libvirt contributors (@lifecycle-libvirt)
'''

EXAMPLES = r'''
- name: Every network of the local hypervisor
  lifecycle.libvirt.network_info:
  register: networks

- name: The addresses the lab network's DHCP server handed out
  lifecycle.libvirt.network_info:
    name: lab
  register: lab

- name: Show them
  ansible.builtin.debug:
    msg: "{{ lab.networks[0].dhcp_leases | map(attribute='address') }}"
'''

RETURN = r'''
networks:
  description: One entry per network, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Network name.
      type: str
      sample: lab
    uuid:
      description: Network UUID.
      type: str
    state:
      description: V(active) or V(inactive).
      type: str
      sample: active
    persistent:
      description: Whether it stays defined when stopped.
      type: bool
    autostart:
      description: Whether it starts with libvirtd.
      type: bool
    forward_mode:
      description: V(nat), V(route), V(open), V(bridge), V(macvtap), ... or V(isolated) when it forwards nothing.
      type: str
      sample: nat
    bridge:
      description: Name of its bridge, if it has one.
      type: str
      sample: virbr-lab
    domain:
      description: DNS domain of its DHCP clients, if set.
      type: str
    mtu:
      description: MTU of its bridge, if set.
      type: int
    addresses:
      description:
        - Its addresses - C(family), C(address), C(prefix), C(network), C(dhcp_ranges) (C(start), C(end))
          and C(dhcp_hosts) (C(mac), C(ip), C(name)).
      type: list
      elements: dict
      sample: [{family: ipv4, address: 192.168.100.1, prefix: 24, network: 192.168.100.0/24,
                dhcp_ranges: [{start: 192.168.100.100, end: 192.168.100.199}], dhcp_hosts: []}]
    dns_hosts:
      description: Host entries of its DNS server - C(ip) and C(hostnames).
      type: list
      elements: dict
    dhcp_leases:
      description:
        - The leases its DHCP server holds - C(mac), C(address), C(prefix), C(family), C(hostname),
          C(client_id), C(expiry_time) (seconds since the epoch). Empty when it is inactive.
      type: list
      elements: dict
      sample: [{mac: "52:54:00:00:10:01", address: 192.168.100.123, prefix: 24, family: ipv4, hostname: web01,
                client_id: null, expiry_time: 1790000000}]
    users:
      description: Names of the running domains plugged into it.
      type: list
      elements: str
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
from ansible_collections.lifecycle.libvirt.plugins.module_utils._network import (
    NETWORK_INFO_ARGUMENT_SPEC, describe_networks)


def main():
    module = LibvirtModule(argument_spec=NETWORK_INFO_ARGUMENT_SPEC, supports_check_mode=True)
    module.run(lambda client: dict(changed=False, networks=describe_networks(
        client, module.params['name'], module.params['include_xml'])))


if __name__ == '__main__':
    main()
