#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: wipe
short_description: Wipe a libvirt storage volume so its data cannot be read back
version_added: 0.1.0
description:
  - Overwrites a volume's content with one of libvirt's wipe patterns and keeps
    the volume. To wipe and delete, use M(lifecycle.libvirt.volume) with
    O(lifecycle.libvirt.volume#module:wipe).
  - libvirt writes the V(zero) pattern itself; every other algorithm runs the
    external C(scrub) program, which must be installed on the hypervisor.
  - Refuses to wipe a volume a running domain uses (its disks or their backing
    chains); a volume that a defined domain, a snapshot or an overlay uses only with
    O(force=true) or, for a stopped domain and its snapshots, O(allowed_users).
  - Long wipes of large volumes can run under Ansible's C(async) and C(poll).
  - libvirt cannot abort a wipe. On SIGTERM or SIGINT (an AWX cancel, Ctrl-C) the task
    fails at once with RV(wipe_running=true) and says that the wipe goes on in libvirtd.
    While a job holds the volume (such a wipe, an upload, a download) the module waits
    for it to end before it wipes, and warns how long it waited.
options:
  pool:
    description: Pool of the volume (with O(name)).
    type: str
    default: default
  name:
    description: Name of the volume. One of O(name) and O(path) is required.
    type: str
  path:
    description: Path of a volume libvirt knows, instead of O(pool) and O(name).
    type: path
  algorithm:
    description:
      - The pattern libvirt (V(zero)) or C(scrub) (the others) writes; see
        C(virsh vol-wipe --help) and C(man scrub).
      - V(trim) discards the blocks; libvirt supports it only for some pool types
        (not directory pools), where the task fails with libvirt's message.
    type: str
    choices: [zero, nnsa, dod, bsi, gutmann, schneier, pfitzner7, pfitzner33, random, trim]
    default: zero
  force:
    description:
      - Wipe a volume that a defined (stopped) domain, a snapshot or an overlay uses. Never overrides a running domain.
      - See the notes for who counts as a user of a volume.
    type: bool
    default: false
  allowed_users:
    description:
      - Names of domains whose use of the volume does not block the wipe, as long as they are
        not running (their snapshots do not block either). Every other user still blocks;
        a running domain always does.
    type: list
    elements: str
    default: []
  verify:
    description:
      - After wiping, read the whole volume back through libvirt (a sparse stream download)
        and prove every byte is zero; RV(checked_bytes) says how much was read.
      - Only V(zero) leaves zeros behind. With another algorithm the check finds its
        pattern, and the task fails after the wipe (with C(changed=true)).
    type: bool
    default: false
extends_documentation_fragment:
  - lifecycle.libvirt.connection
  - lifecycle.libvirt.attributes
  - lifecycle.libvirt.volume_users
attributes:
  check_mode:
    support: full
    details:
      - Check mode reads the volume as the real run does and reports the same
        C(changed) and C(diff); it writes nothing and does not verify.
  diff_mode:
    support: full
    details: Says whether the content was already all zeros and what it will be.
  idempotent:
    support: partial
    details:
      - With V(zero), the task reports no change when the volume already reads as zeros
        (nothing allocated, or a read of the whole volume finds only zero bytes);
        it reports a change only when a non-zero byte was found and the volume was wiped.
      - Every other algorithm writes random or mixed patterns that cannot be told
        apart from data, so it always wipes and always reports a change.
seealso:
  - module: lifecycle.libvirt.volume
  - name: virStorageVolWipePattern
    description: libvirt's wipe API and its algorithms.
    link: https://libvirt.org/html/libvirt-libvirt-storage.html#virStorageVolWipeAlgorithm
author:
  - lifecycle.libvirt contributors (@lifecycle-libvirt)
'''

EXAMPLES = r'''
- name: Zero a data disk and prove it
  lifecycle.libvirt.wipe:
    pool: default
    name: web01-data.qcow2
    verify: true

- name: Wipe a large volume with the DoD pattern in the background
  lifecycle.libvirt.wipe:
    path: /var/lib/libvirt/images/old-db.raw
    algorithm: dod
  async: 7200
  poll: 30
'''

RETURN = r'''
path:
  description: Path of the volume.
  returned: always
  type: str
  sample: /var/lib/libvirt/images/web01-data.qcow2
algorithm:
  description: The algorithm used.
  returned: always
  type: str
  sample: zero
size:
  description: Size of the volume's file (its physical size) in bytes.
  returned: always
  type: int
  sample: 1073741824
wiped_bytes:
  description: Bytes overwritten; 0 when nothing was wiped.
  returned: success
  type: int
  sample: 1073741824
verified:
  description: Whether the volume was read back (before or after the wipe) and holds only zeros.
  returned: success
  type: bool
checked_bytes:
  description: Bytes read back to prove the volume is zero (holes included).
  returned: success
  type: int
  sample: 1073741824
wipe_running:
  description: The task was interrupted while libvirtd wipes the volume; the wipe goes on there.
  returned: when interrupted during the wipe
  type: bool
  sample: true
actions:
  description: The actions taken (or, in check mode, that would be taken).
  returned: always
  type: list
  elements: str
  sample: [wipe]
duration:
  description: Seconds the task took, measured on a monotonic clock.
  returned: always
  type: float
  sample: 3.2
diff:
  description: The content before and after, as shown by C(--diff).
  returned: when diff mode is on
  type: list
  elements: dict
'''

from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import LibvirtModule
from ansible_collections.lifecycle.libvirt.plugins.module_utils._wipe import WIPE_ARGUMENT_SPEC, wipe_volume


def main():
    module = LibvirtModule(argument_spec=WIPE_ARGUMENT_SPEC, required_one_of=[('name', 'path')],
                           mutually_exclusive=[('name', 'path')], supports_check_mode=True)
    module.run(lambda client: wipe_volume(client, module.params, module.check_mode))


if __name__ == '__main__':
    main()
