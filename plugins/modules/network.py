#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: network
short_description: Define, start, stop, update and remove libvirt virtual networks
version_added: 0.1.0
description:
  - Converges one libvirt virtual network to V(present), V(active), V(inactive) or V(absent), and its
    definition to the declared one, given as O(xml) or as structured options (O(forward_mode), O(bridge),
    O(ipv4), O(ipv6), O(dns_hosts), O(domain), O(mtu)).
  - The comparison is semantic. What libvirt fills in and the declaration leaves out (uuid, bridge
    name and its stp/delay, MAC address, NAT port range) never counts as a change and is kept when the
    network is redefined. Everything else is declared completely; element order does not matter.
  - On an active network, changed DHCP hosts and DNS hosts are applied live (virNetworkUpdate) without
    restarting it, so its guests keep their connection. Any other change of an active network is stored
    and reported as RV(pending_restart); O(restart_on_change=true) restarts the network to apply it.
  - Refused before anything changes, with one message - DHCP ranges or hosts outside the network,
    overlapping DHCP ranges, addresses overlapping another libvirt network, a host bridge or interface
    that does not exist, XML that libvirt's own parser refuses, and stopping or removing a network
    that running domains use (unless O(force=true)).
options:
  name:
    description:
      - Name of the network. Required unless O(xml) gives it; when both are given they must agree.
    type: str
  xml:
    description:
      - The network's full libvirt XML. Mutually exclusive with the structured options.
    type: str
  state:
    description:
      - V(present) defines the network without changing whether it runs.
      - V(active) defines it if needed and starts it.
      - V(inactive) defines it if needed and stops it.
      - V(absent) stops and undefines it.
    type: str
    choices: [present, absent, active, inactive]
    default: active
  autostart:
    description: Whether libvirtd starts the network when it starts. Unchanged when omitted.
    type: bool
  force:
    description:
      - Stop or remove a network (also to restart it with O(restart_on_change)) although running domains
        are plugged into it; they lose their connection.
    type: bool
    default: false
  restart_on_change:
    description:
      - Restart an active network whose declared definition differs from the running one in ways that
        cannot be applied live. Without it the change waits, and RV(pending_restart) is V(true).
    type: bool
    default: false
  forward_mode:
    description:
      - V(nat), V(route) and V(open) give the network a bridge of its own, with NAT, routing or
        nothing added to the firewall; V(isolated) is a bridge with no forwarding at all.
      - V(bridge) attaches to an existing host bridge (O(bridge)); V(macvtap) to a host interface
        (O(forward_dev)).
    type: str
    choices: [nat, route, isolated, open, bridge, macvtap]
  bridge:
    description:
      - Name of the network's bridge (at most 15 characters); libvirt picks one (C(virbrN)) when omitted.
      - With O(forward_mode=bridge), the existing host bridge to attach to.
    type: str
  forward_dev:
    description: The host interface traffic leaves by (V(nat), V(route)), or the one V(macvtap) attaches to.
    type: str
  ipv4:
    description: The network's IPv4 address, DHCP ranges and static DHCP hosts.
    type: dict
    suboptions: &ip_suboptions
      address:
        description: The host's address on the network, with its prefix, for example V(192.168.100.1/24) or V(fd00:100::1/64).
        type: str
        required: true
      dhcp_ranges:
        description: Address ranges DHCP hands out; inside the network, not overlapping, without the network's own address.
        type: list
        elements: dict
        default: []
        suboptions:
          start:
            description: First address of the range.
            type: str
            required: true
          end:
            description: Last address of the range.
            type: str
            required: true
      dhcp_hosts:
        description: Static DHCP hosts. Changed live on an active network.
        type: list
        elements: dict
        default: []
        suboptions:
          mac:
            description: MAC address of the guest's interface; IPv4 hosts need it, DHCPv6 hosts are known by their name.
            type: str
          ip:
            description: The address it always gets.
            type: str
            required: true
          name:
            description: Host name given to it.
            type: str
  ipv6:
    description: The network's IPv6 address, DHCPv6 ranges and static DHCPv6 hosts, as for O(ipv4).
    type: dict
    suboptions: *ip_suboptions
  dns_hosts:
    description: Host entries of the network's DNS server. Changed live on an active network.
    type: list
    elements: dict
    suboptions:
      ip:
        description: The address the names resolve to.
        type: str
        required: true
      hostnames:
        description: The names.
        type: list
        elements: str
        required: true
  domain:
    description: DNS domain of the network's DHCP clients.
    type: str
  mtu:
    description: MTU of the network's bridge.
    type: int
extends_documentation_fragment:
  - lifecycle.libvirt.connection
  - lifecycle.libvirt.attributes
  - lifecycle.libvirt.attributes.planned
attributes:
  diff_mode:
    support: full
    details: Shows state, autostart and persistence, and the stored definition against the declared one.
  idempotent:
    support: full
seealso:
  - module: lifecycle.libvirt.network_info
  - module: lifecycle.libvirt.domain_info
author:
  - lifecycle.libvirt contributors (@lifecycle-libvirt)
'''

EXAMPLES = r'''
- name: A NAT network with DHCP, started now and at boot
  lifecycle.libvirt.network:
    name: lab
    forward_mode: nat
    bridge: virbr-lab
    ipv4:
      address: 192.168.100.1/24
      dhcp_ranges:
        - start: 192.168.100.100
          end: 192.168.100.199
      dhcp_hosts:
        - mac: "52:54:00:00:10:01"
          ip: 192.168.100.10
          name: web01
    dns_hosts:
      - ip: 192.168.100.10
        hostnames: [web01, www]
    domain: lab.example
    state: active
    autostart: true

- name: The same network as XML
  lifecycle.libvirt.network:
    xml: "{{ lookup('ansible.builtin.file', 'lab-network.xml') }}"

- name: Attach to the host's bridge br0
  lifecycle.libvirt.network:
    name: lan
    forward_mode: bridge
    bridge: br0

- name: Remove it even though guests still use it
  lifecycle.libvirt.network:
    name: lab
    state: absent
    force: true
'''

RETURN = r'''
name:
  description: Name of the network.
  returned: always
  type: str
  sample: lab
state:
  description: State after the task (in check mode, the state the real run would reach).
  returned: always
  type: str
  sample: active
autostart:
  description: Whether the network starts with libvirtd.
  returned: always
  type: bool
persistent:
  description: Whether the network stays defined when stopped.
  returned: always
  type: bool
bridge:
  description: Name of the network's bridge after the task; null in check mode and once it is absent.
  returned: always
  type: str
  sample: virbr-lab
differences:
  description: How the stored definition differed from the declared one.
  returned: always
  type: list
  elements: str
  sample: ["/network/ip[address=192.168.100.1,prefix=24]/dhcp/host[ip=192.168.100.11,mac=52:54:00:00:10:02]: added"]
live_updates:
  description: The DHCP-host and DNS-host changes applied (or, in check mode, to apply) to the running network.
  returned: always
  type: list
  elements: str
  sample: ["add <host mac=\"52:54:00:00:10:02\" ip=\"192.168.100.11\"/>"]
pending_restart:
  description: Whether the running network differs from its stored definition and needs a restart.
  returned: always
  type: bool
actions:
  description: The actions taken (or, in check mode, that would be taken), in order.
  returned: always
  type: list
  elements: str
  sample: [define, start, set_autostart]
duration:
  description: Seconds the task took, measured on a monotonic clock.
  returned: always
  type: float
  sample: 0.12
diff:
  description: Before and after, as shown by C(--diff).
  returned: when diff mode is on
  type: list
  elements: dict
'''

from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import LibvirtModule
from ansible_collections.lifecycle.libvirt.plugins.module_utils._network import (
    NETWORK_ARGUMENT_SPEC, NETWORK_MUTUALLY_EXCLUSIVE, converge_network)


def main():
    module = LibvirtModule(argument_spec=NETWORK_ARGUMENT_SPEC, mutually_exclusive=NETWORK_MUTUALLY_EXCLUSIVE,
                           supports_check_mode=True)
    module.run(lambda client: converge_network(client, module.params, module.check_mode))


if __name__ == '__main__':
    main()
