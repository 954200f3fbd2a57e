#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: snapshot_info
short_description: The snapshots of a libvirt domain, as a list and as a tree
version_added: 0.1.0
description:
  - Lists every snapshot of one domain, oldest first, with its parent and children,
    and gives the same snapshots as a tree. Says which one is current.
extends_documentation_fragment:
  - lifecycle.libvirt.connection
  - lifecycle.libvirt.attributes
  - lifecycle.libvirt.attributes.info_module
options:
  domain:
    description:
      - Name of the domain. A name libvirt does not know fails the task.
    type: str
    required: true
seealso:
  - module: lifecycle.libvirt.snapshot
author:
  - lifecycle.libvirt contributors (@lifecycle-libvirt)
'''

EXAMPLES = r'''
- name: The snapshots of web01
  lifecycle.libvirt.snapshot_info:
    domain: web01
  register: web01_snapshots

- name: Show the current one and the names of all
  ansible.builtin.debug:
    msg: "current {{ web01_snapshots.current }} of {{ web01_snapshots.snapshots | map(attribute='name') }}"
'''

RETURN = r'''
domain:
  description: Name of the domain.
  returned: always
  type: str
  sample: web01
snapshots:
  description: Every snapshot of the domain, oldest first (creation time, then parent before child).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Name of the snapshot.
      type: str
    parent:
      description: Name of its parent, or null for a root.
      type: str
    children:
      description: Names of its direct children, oldest first.
      type: list
      elements: str
    description:
      description: Its description, or null.
      type: str
    creation_time:
      description: Creation time, seconds since the epoch.
      type: int
    state:
      description:
        - State of the domain when it was taken - V(running), V(paused), V(defined) - or
          V(disk-snapshot) for a disk-only snapshot.
      type: str
    memory:
      description: Whether it holds the domain's memory.
      type: bool
    disk_only:
      description: Whether it is a disk-only snapshot.
      type: bool
    external:
      description: Whether it is external (overlay files).
      type: bool
    disks:
      description: Disks libvirt records for it - C(target), C(snapshot) (internal, external or no), C(file).
      type: list
      elements: dict
    current:
      description: Whether it is the current snapshot.
      type: bool
tree:
  description: The same snapshots as nested C(name), C(current), C(children) dicts; roots first.
  returned: always
  type: list
  elements: dict
  sample: [{name: base, current: false, children: [{name: before-upgrade, current: true, children: []}]}]
current:
  description: Name of the current snapshot, or null when there is none.
  returned: always
  type: str
  sample: before-upgrade
count:
  description: Number of snapshots.
  returned: always
  type: int
  sample: 2
duration:
  description: Seconds the task took, measured on a monotonic clock.
  returned: always
  type: float
  sample: 0.02
'''

from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import LibvirtModule
from ansible_collections.lifecycle.libvirt.plugins.module_utils._snapshot import (
    SNAPSHOT_INFO_ARGUMENT_SPEC, describe_snapshots)


def main():
    module = LibvirtModule(argument_spec=SNAPSHOT_INFO_ARGUMENT_SPEC, supports_check_mode=True)
    module.run(lambda client: describe_snapshots(client, module.params['domain']))


if __name__ == '__main__':
    main()
