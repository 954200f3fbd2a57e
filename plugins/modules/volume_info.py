#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: volume_info
short_description: Facts about the volumes of a libvirt storage pool
version_added: 0.1.0
description:
  - Reads path, key, capacity, allocation, format, backing file, mode and users of one
    volume, or of every volume of an active pool.
extends_documentation_fragment:
  - lifecycle.libvirt.connection
  - lifecycle.libvirt.attributes
  - lifecycle.libvirt.attributes.info_module
options:
  pool:
    description: Name of the pool (it must be active).
    type: str
    default: default
  name:
    description:
      - Name of the volume. Without it, every volume of the pool is listed.
      - A name libvirt does not know fails the task.
    type: str
seealso:
  - module: lifecycle.libvirt.volume
author:
  - lifecycle.libvirt contributors (@lifecycle-libvirt)
'''

EXAMPLES = r'''
- name: Every volume of the default pool
  lifecycle.libvirt.volume_info:
  register: volumes

- name: One volume
  lifecycle.libvirt.volume_info:
    pool: default
    name: web01-data.qcow2
'''

RETURN = r'''
volumes:
  description: One entry per volume, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Name of the volume.
      type: str
      returned: always
    pool:
      description: Name of its pool.
      type: str
      returned: always
    path:
      description: Path of the volume.
      type: str
      returned: always
    key:
      description: libvirt's key of the volume.
      type: str
      returned: always
    capacity:
      description: Capacity in bytes.
      type: int
      returned: always
    allocation:
      description: Bytes allocated on disk.
      type: int
      returned: always
    format:
      description: Format of the volume.
      type: str
      returned: always
    backing:
      description: Path of the backing file; null when there is none.
      type: str
      returned: always
    mode:
      description: Permissions of the volume's file, in octal.
      type: str
      returned: always
    users:
      description:
        - Everything that uses the volume, found by identity (device and inode, or libvirt's
          lookup of the path), as M(lifecycle.libvirt.wipe) and M(lifecycle.libvirt.volume)
          decide it before they destroy data. One entry per user and way of use.
      type: list
      elements: dict
      returned: always
      contains:
        kind:
          description: V(domain) (a domain's definition), V(snapshot) (a snapshot of a domain) or V(volume) (another pool volume).
          type: str
          returned: always
        name:
          description: The domain's name, the snapshot's name, or V(pool/volume).
          type: str
          returned: always
        domain:
          description: The domain (of a snapshot, the domain it belongs to); null for a volume.
          type: str
          returned: always
        running:
          description: Whether the domain runs (always false for snapshots and volumes).
          type: bool
          returned: always
        use:
          description:
            - How it uses the volume. V(disk) (the source of a disk; for a snapshot, an external file it
              recorded or a disk of the definition it saved), V(backing) (an image below a disk, or below an
              overlay volume, in its backing chain), V(mirror) (the target of a block copy), V(kernel),
              V(initrd), V(dtb), V(loader), V(nvram), V(memory) (a snapshot's memory file), V(same_file)
              (another volume that is the same file under another name) or V(overlay) (another volume whose
              backing chain reaches this one).
          type: str
          returned: always
          choices: [disk, backing, mirror, kernel, initrd, dtb, loader, nvram, memory, same_file, overlay]
        target:
          description: The target of the disk (for example V(vda)) for the uses V(disk), V(backing) and V(mirror); null otherwise.
          type: str
          returned: always
        via:
          description:
            - The same in words, for messages, for example V(disk vda), V(backing chain of disk vda),
              V(external file of disk vda), V(memory file), V(kernel), V(backing chain)
              (an overlay volume) or V(same file) (another name of the same file).
            - Test C(use) and C(target) in a playbook, not these words.
          type: str
          returned: always
        path:
          description: The path as the user names it (may differ from the volume's path, for example through a symlink).
          type: str
          returned: always
    backing_chain:
      description:
        - The images below the volume, top first, as qemu reads them (the qcow2 headers where the module
          runs on the hypervisor, else libvirt's volume XML). Empty for an image without a backing file.
      type: list
      elements: dict
      returned: always
      contains:
        path:
          description: Path of the image.
          type: str
          returned: always
        pool:
          description: The pool of the image when it is a pool volume; null otherwise.
          type: str
          returned: always
        name:
          description: Its name in that pool; null when it is not a pool volume.
          type: str
          returned: always
duration:
  description: Seconds the task took, measured on a monotonic clock.
  returned: always
  type: float
  sample: 0.02
'''

from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import LibvirtModule
from ansible_collections.lifecycle.libvirt.plugins.module_utils._volume_info import VOLUME_INFO_ARGUMENT_SPEC, volume_info


def main():
    module = LibvirtModule(argument_spec=VOLUME_INFO_ARGUMENT_SPEC, supports_check_mode=True)
    module.run(lambda client: volume_info(client, module.params))


if __name__ == '__main__':
    main()
