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
      description: Disks - C(target), C(device), C(type), C(source) (path, device or pool/volume), C(format).
      type: list
      elements: dict
      sample: [{target: vda, device: disk, type: file, source: /var/lib/libvirt/images/web01.qcow2, format: qcow2}]
    interfaces:
      description: Network interfaces - C(type), C(mac), C(source) (network, bridge or device), C(model).
      type: list
      elements: dict
      sample: [{type: network, mac: "52:54:00:12:34:56", source: default, model: virtio}]
    xml:
      description: The live XML.
      type: str
      returned: when O(include_xml=true)
'''

from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import LibvirtModule
from ansible_collections.lifecycle.libvirt.plugins.module_utils._domain import describe_domains


def main():
    module = LibvirtModule(argument_spec=dict(name=dict(type='str'), include_xml=dict(type='bool', default=False)),
                           supports_check_mode=True)
    module.run(lambda client: dict(changed=False, domains=describe_domains(
        client, module.params['name'], module.params['include_xml'])))


if __name__ == '__main__':
    main()
