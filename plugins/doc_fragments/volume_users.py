# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Who uses a volume: one explanation for every module whose guard asks it
    # (plugins/module_utils/_usage.py, StorageUsage).
    DOCUMENTATION = r'''
options: {}
notes:
  - Who uses a volume is decided by identity, not by how a path is spelled, from the file's
    device and inode (or a block device's number), or libvirt's own lookup of the path
    when the module does not run on the hypervisor. Symlinked directories, bind mounts,
    hard links and C(..) in a path all count as the same file.
  - Users are the disks of every domain (live and inactive definitions) with their whole
    backing chains (as libvirt reports them, and as the qcow2 headers say), kernel, initrd,
    loader and NVRAM files; the files recorded in snapshots (external overlays, memory
    files and the disks of the saved definition, with their chains); and pool volumes whose
    backing chain reaches the volume, or that are the same file under another name.
  - M(lifecycle.libvirt.volume_info) lists them as C(users) of each volume, each with who (C(kind), C(name),
    C(domain), C(running)) and how (C(use), one of disk, backing, mirror, kernel, initrd, dtb, loader, nvram,
    memory, same_file or overlay; C(target), the disk's target), so a playbook can decide from fields, not words.
'''
