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
    description: Name of the volume. One of O(name), O(path) and O(volumes) is required.
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
  volumes:
    description:
      - Wipe many volumes in one task - one module run and one connection - instead of the top-level
        O(name) or O(path), for example the disks of the VMs being decommissioned.
      - Each item takes the options of the single form and names its volume by O(volumes[].name) (in
        O(volumes[].pool)) or by O(volumes[].path); an option an item leaves out (or sets to null) takes the
        value given at the top level of the task, so the top-level options are the defaults of every item.
      - Up to O(parallel) volumes are wiped at once. Every item is wiped exactly as the single form wipes it,
        with the same refusals (a volume in use), check mode and diff. An item that fails does not stop the
        others; the task then fails at the end, naming each failed volume and why, and RV(volumes) reports
        every item.
      - Every item's volume is looked up before anything is wiped; a batch that names one volume twice (by
        name or by path, as libvirt resolves them) is refused before anything is done.
      - On SIGTERM or SIGINT the wipes not yet started are not started (they fail, saying so); those running
        finish first, as libvirt cannot abort them.
    type: list
    elements: dict
    suboptions:
      pool:
        description: The O(pool) of this volume; the top-level O(pool) when omitted.
        type: str
      name:
        description: Name of the volume. One of O(volumes[].name) and O(volumes[].path) is required.
        type: str
      path:
        description: Path of a volume libvirt knows, instead of O(volumes[].pool) and O(volumes[].name).
        type: path
      algorithm:
        description: The O(algorithm) of this volume; the top-level O(algorithm) when omitted.
        type: str
        choices: [zero, nnsa, dod, bsi, gutmann, schneier, pfitzner7, pfitzner33, random, trim]
      force:
        description: The O(force) of this volume; the top-level O(force) when omitted.
        type: bool
      allowed_users:
        description: The O(allowed_users) of this volume; the top-level O(allowed_users) when omitted.
        type: list
        elements: str
      verify:
        description: The O(verify) of this volume; the top-level O(verify) when omitted.
        type: bool
  parallel:
    description:
      - With O(volumes), how many volumes are wiped at once (each by a thread of the module, sharing its
        connection).
    type: int
    default: 8
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
- name: Zero the disks of two retired VMs, several at once, each allowed its own VM as user
  lifecycle.libvirt.wipe:
    verify: true
    volumes:
      - name: web01-root.qcow2
        allowed_users: [web01]
      - name: web02-root.qcow2
        allowed_users: [web02]
      - path: /srv/images/web02-scratch.raw
        allowed_users: [web02]

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
  returned: without O(volumes)
  type: str
  sample: /var/lib/libvirt/images/web01-data.qcow2
pool:
  description: Name of the volume's pool.
  returned: without O(volumes)
  type: str
  sample: default
name:
  description: Name of the volume.
  returned: without O(volumes)
  type: str
  sample: web01-data.qcow2
algorithm:
  description: The algorithm used.
  returned: without O(volumes)
  type: str
  sample: zero
size:
  description: Size of the volume's file (its physical size) in bytes.
  returned: without O(volumes)
  type: int
  sample: 1073741824
wiped_bytes:
  description: Bytes overwritten; 0 when nothing was wiped.
  returned: success, without O(volumes)
  type: int
  sample: 1073741824
verified:
  description: Whether the volume was read back (before or after the wipe) and holds only zeros.
  returned: success, without O(volumes)
  type: bool
checked_bytes:
  description: Bytes read back to prove the volume is zero (holes included).
  returned: success, without O(volumes)
  type: int
  sample: 1073741824
wipe_running:
  description: The task was interrupted while libvirtd wipes the volume; the wipe goes on there.
  returned: when interrupted during the wipe, without O(volumes)
  type: bool
  sample: true
actions:
  description: The actions taken (or, in check mode, that would be taken).
  returned: without O(volumes)
  type: list
  elements: str
  sample: [wipe]
duration:
  description: Seconds the task took, measured on a monotonic clock.
  returned: always
  type: float
  sample: 3.2
diff:
  description:
    - The content before and after, as shown by C(--diff).
    - With O(volumes), the entries of every item, in the order of the items.
  returned: when diff mode is on
  type: list
  elements: dict
volumes:
  description:
    - With O(volumes), the result of each item, in the order of the items - the fields the single form
      returns (RV(path), RV(pool), RV(name), RV(wiped_bytes), RV(actions), ...), and these.
  returned: with O(volumes)
  type: list
  elements: dict
  contains:
    changed:
      description: Whether this item changed (in check mode, would change) something.
      type: bool
    failed:
      description: Whether this item failed; the task fails when any did.
      type: bool
    msg:
      description: Why this item failed.
      returned: when it failed
      type: str
      sample: "Failed to wipe volume default/web01-root.qcow2: running domain(s) web01 use it; stop them first"
    duration:
      description: Seconds this item took.
      returned: unless the item failed before it was wiped (its volume not found)
      type: float
      sample: 3.2
'''

from ansible_collections.lifecycle.libvirt.plugins.module_utils._batch import BatchForm
from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import LibvirtModule
from ansible_collections.lifecycle.libvirt.plugins.module_utils._wipe import WIPE_ARGUMENT_SPEC, WipeTarget, wipe_label, wipe_volume

BATCH = BatchForm('volumes', WIPE_ARGUMENT_SPEC, identity=('path', 'pool', 'name'), label=wipe_label)
NAME_OR_PATH = [('name', 'path')]
ARGUMENT_SPEC = dict(WIPE_ARGUMENT_SPEC, **BATCH.argument_spec(required_one_of=NAME_OR_PATH, mutually_exclusive=NAME_OR_PATH))


def main():
    module = LibvirtModule(argument_spec=ARGUMENT_SPEC, required_one_of=[('name', 'path', 'volumes')],
                           mutually_exclusive=NAME_OR_PATH + [('volumes', 'name'), ('volumes', 'path')],
                           supports_check_mode=True)
    module.run(lambda client: BATCH.converge(
        module.params, lambda params: WipeTarget(client, params),
        lambda target: wipe_volume(client, target, module.check_mode), module._diff))


if __name__ == '__main__':
    main()
