#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: snapshot
short_description: Create, revert to and delete snapshots of a libvirt domain
version_added: 0.1.0
description:
  - Creates a snapshot of a domain, reverts the domain to one, deletes one (or a
    subtree), and keeps only the newest N snapshots (retention).
  - The kind of snapshot follows the domain. A running or paused domain gets an
    internal snapshot of its disks and memory - a full checkpoint that a revert
    brings back running (or paused) exactly where it was. A stopped domain gets an
    internal snapshot of its disks. Internal snapshots need qcow2 disks.
  - O(disk_only=true) makes an external snapshot instead - new overlay files take
    the writes, the old images become their read-only backing files.
  - Everything is checked before anything changes - the domain and the snapshot
    exist, disk targets are the domain's, the domain has a writable disk to
    snapshot, no overlay file would be written through a symbolic link, onto a
    device node or over an existing file, the guest agent is connected for
    O(quiesce), the libvirt version can revert or delete the snapshot, libvirt can
    delete an external snapshot under its parent, a revert would not discard a
    managed save image - so a bad request fails with one message (the same in
    check mode) and changes nothing.
options:
  domain:
    description: Name of the domain. Required unless O(snapshots) is given (it is then the default domain of the items).
    type: str
  name: &name
    description:
      - Name of the snapshot. It must not be empty or contain C(/), C(..) or NUL
        (libvirt puts it into the names of external overlay files).
      - Required with O(state=reverted) and, unless O(keep) is given, with O(state=absent).
      - With O(state=present) and no name, the snapshot is named after the current Unix
        time (as C(virsh snapshot-create) does), prefixed with O(name_prefix) when given.
        Such a task creates a new snapshot every time it runs, and its check mode predicts
        the name from the time the check runs.
    type: str
  state:
    description:
      - V(present) creates the snapshot unless one with this name exists (an existing
        snapshot is left as it is, whatever its kind or description).
      - V(absent) deletes it. Its children are kept and attached to its parent, unless
        O(children=delete). An external snapshot's overlay is merged back into its
        backing image (block commit) and the domain's disks point at the merged image
        again. Deleting a snapshot that does not exist changes nothing.
      - V(reverted) returns the domain to the snapshot - disks, and memory when the
        snapshot has it - throwing away everything since. It always reports a change.
        RV(previous_state), RV(previous_snapshot) and RV(discarded) say what was replaced.
    type: str
    choices: [present, absent, reverted]
    default: present
  description: &description
    description: Free text stored with a new snapshot.
    type: str
  disk_only:
    description:
      - Make an external, disk-only snapshot, without memory. Each disk gets an overlay
        file, named by O(disks) or, for disks not listed there, by libvirt (the image's
        name with the snapshot name as its suffix, next to it).
      - libvirt 9.0 cannot revert to external snapshots (libvirt 9.7 can); the module
        refuses before changing anything.
    type: bool
    default: false
  disks: &disks
    description:
      - Overlay files of a disk-only snapshot, one entry per disk. Needs O(disk_only=true).
      - A target the domain does not have fails the task.
    type: list
    elements: dict
    suboptions:
      target:
        description: The disk's target device, as in C(<target dev=...>), for example C(vda).
        type: str
        required: true
      file:
        description: Absolute path of the overlay file on the hypervisor. libvirt names it when omitted.
        type: path
  quiesce:
    description:
      - Freeze the guest's file systems (through the QEMU guest agent) while the snapshot
        is taken, so that they are consistent on disk.
      - Needs O(disk_only=true) (libvirt quiesces only disk-only snapshots), a running
        domain and a connected guest agent; otherwise the task fails before acting.
    type: bool
    default: false
  atomic:
    description: Ask libvirt to take the snapshot of all disks atomically or not at all.
    type: bool
    default: false
  revert_state: &revert_state
    description:
      - State of the domain after O(state=reverted).
      - By default it is the state the snapshot was taken in - V(running) or V(paused)
        for a snapshot with memory, V(defined) (stopped) for one without.
      - V(running) for a snapshot without memory boots the guest from the reverted disks.
        V(defined) for a snapshot with memory restores it paused and powers it off.
    type: str
    choices: [running, paused, defined]
  children:
    description:
      - With O(state=absent), V(keep) keeps the snapshot's children (re-parented to its
        parent); V(delete) deletes the whole subtree.
    type: str
    choices: [keep, delete]
    default: keep
  keep: &keep
    description:
      - Retention. Keep only the newest O(keep) snapshots of the domain - those whose
        name starts with O(name_prefix), when given - and delete the older ones, one by
        one (their children are kept). RV(deleted) lists them.
      - With O(state=present), the new snapshot counts as the newest, so O(keep) is at
        least 1. With O(state=absent), give O(keep) instead of O(name).
      - Age is the creation time; within one second a parent counts as older than its child.
    type: int
  name_prefix: &name_prefix
    description:
      - Limit O(keep) to the snapshots whose name starts with this text.
      - With O(state=present) and no O(name), the new snapshot is named this prefix
        followed by the current Unix time.
    type: str
  snapshots:
    description:
      - Snapshots of many domains in one task - one module run and one connection - instead of the top-level
        O(domain) alone, for example the same O(name) for every domain of a list.
      - Each item takes the options of the single form; an option an item leaves out (or sets to null) takes
        the value given at the top level of the task, so the top-level options are the defaults of every item.
      - Up to O(parallel) domains are handled at once. Every item is converged exactly as the single form
        converges it, with the same checks, check mode and diff. An item that fails does not stop the others;
        the task then fails at the end, naming each failed domain and why, and RV(snapshots) reports every item.
      - A batch that names one domain twice is refused before anything is done.
    type: list
    elements: dict
    suboptions:
      domain:
        description: Name of the domain; the top-level O(domain) when omitted.
        type: str
      name: *name
      state:
        description: The O(state) of this item; the top-level O(state) when omitted.
        type: str
        choices: [present, absent, reverted]
      description: *description
      disk_only:
        description: The O(disk_only) of this item; the top-level O(disk_only) when omitted.
        type: bool
      disks: *disks
      quiesce:
        description: The O(quiesce) of this item; the top-level O(quiesce) when omitted.
        type: bool
      atomic:
        description: The O(atomic) of this item; the top-level O(atomic) when omitted.
        type: bool
      revert_state: *revert_state
      children:
        description: The O(children) of this item; the top-level O(children) when omitted.
        type: str
        choices: [keep, delete]
      keep: *keep
      name_prefix: *name_prefix
  parallel:
    description:
      - With O(snapshots), how many domains are handled at once (each by a thread of the module, sharing its
        connection).
    type: int
    default: 8
extends_documentation_fragment:
  - lifecycle.libvirt.connection
  - lifecycle.libvirt.attributes
attributes:
  check_mode:
    support: full
    details: Check mode makes the same checks and plan as the real run and reports the same
      C(changed), C(actions), C(deleted) and C(diff); nothing is changed.
  diff_mode:
    support: full
    details: Shows each snapshot created or deleted, and for a revert the domain's state and
      current snapshot before and after.
  idempotent:
    support: partial
    details:
      - V(present) with a O(name) and V(absent) are idempotent; so is O(keep).
      - V(reverted) always reverts and always reports a change.
      - V(present) without O(name) names the snapshot after the current time and so creates a
        new snapshot each time.
notes:
  - A revert destroys everything the domain did since the snapshot, on its disks and in its
    memory. That is what it is for; the result says what was replaced.
  - libvirt 9.0 deletes external snapshots by merging the overlay into its backing image
    (block commit) while the domain runs or not; older libvirt refuses, and so does the module.
  - Undefining the domain (M(lifecycle.libvirt.domain) with V(absent)) removes the snapshot
    metadata, not the images.
seealso:
  - module: lifecycle.libvirt.snapshot_info
  - module: lifecycle.libvirt.domain
  - name: libvirt snapshot XML format
    description: What libvirt stores for a snapshot.
    link: https://libvirt.org/formatsnapshot.html
author:
  - lifecycle.libvirt contributors (@lifecycle-libvirt)
'''

EXAMPLES = r'''
- name: The same checkpoint of many guests in one task, several at once
  lifecycle.libvirt.snapshot:
    name: before-upgrade
    description: Before the kernel upgrade
    snapshots:
      - domain: web01
      - domain: web02
      - domain: db01
        disk_only: true

- name: Checkpoint a running guest (disks and memory) before an upgrade
  lifecycle.libvirt.snapshot:
    domain: web01
    name: before-upgrade
    description: Before the kernel upgrade

- name: Go back to it - the guest runs again from that moment
  lifecycle.libvirt.snapshot:
    domain: web01
    name: before-upgrade
    state: reverted

- name: Delete it once the upgrade is proven
  lifecycle.libvirt.snapshot:
    domain: web01
    name: before-upgrade
    state: absent

- name: Nightly snapshot, keeping the last seven nightlies
  lifecycle.libvirt.snapshot:
    domain: web01
    name_prefix: nightly-
    keep: 7

- name: External disk-only snapshot with the overlay where we want it
  lifecycle.libvirt.snapshot:
    domain: db01
    name: pre-migration
    disk_only: true
    disks:
      - target: vda
        file: /var/lib/libvirt/images/db01-pre-migration.qcow2

- name: Delete a snapshot and everything taken after it on that branch
  lifecycle.libvirt.snapshot:
    domain: web01
    name: experiment
    state: absent
    children: delete
'''

RETURN = r'''
domain:
  description: Name of the domain.
  returned: without O(snapshots)
  type: str
  sample: web01
snapshot:
  description:
    - The snapshot created, found, reverted to or deleted; null when O(state=absent) found
      none or O(keep) alone was given.
    - In check mode a snapshot to be created is the prediction, without RV(snapshot.creation_time).
  returned: without O(snapshots)
  type: dict
  contains:
    name:
      description: Name of the snapshot.
      type: str
      sample: before-upgrade
    parent:
      description: Name of its parent snapshot, or null.
      type: str
    description:
      description: Its description, or null.
      type: str
    creation_time:
      description: Creation time, seconds since the epoch; null in check mode for a new snapshot.
      type: int
      sample: 1795947197
    state:
      description:
        - State of the domain when the snapshot was taken - V(running), V(paused), V(defined)
          (stopped) - or V(disk-snapshot) for a disk-only snapshot (libvirt records no state then).
      type: str
      sample: running
    memory:
      description: Whether the snapshot holds the domain's memory.
      type: bool
    disk_only:
      description: Whether it is a disk-only snapshot.
      type: bool
    external:
      description: Whether it is external (overlay files) rather than inside the qcow2 images.
      type: bool
    disks:
      description: Disks libvirt records for it - C(target), C(snapshot) (internal, external or no), C(file) (overlay).
      type: list
      elements: dict
    current:
      description: Whether it is the domain's current snapshot.
      type: bool
deleted:
  description: Names of the snapshots deleted (or, in check mode, to be deleted), oldest first.
  returned: without O(snapshots)
  type: list
  elements: str
  sample: [nightly-1795900000]
actions:
  description:
    - Steps taken, in order - V(create), V(delete), V(delete_with_children), V(revert),
      V(revert_running), V(revert_paused), V(stop).
  returned: without O(snapshots)
  type: list
  elements: str
  sample: [create, delete]
state:
  description: State of the domain after the revert.
  returned: when O(state=reverted), without O(snapshots)
  type: str
  sample: running
previous_state:
  description: State of the domain before the revert.
  returned: when O(state=reverted), without O(snapshots)
  type: str
  sample: running
previous_snapshot:
  description: The domain's current snapshot before the revert, or null.
  returned: when O(state=reverted), without O(snapshots)
  type: str
discarded:
  description: What the revert replaced, in words.
  returned: when O(state=reverted), without O(snapshots)
  type: str
  sample: The running state of domain web01 (disks and memory, as they were before the revert) was replaced by snapshot before-upgrade
duration:
  description: Seconds the task took, measured on a monotonic clock.
  returned: always
  type: float
  sample: 0.42
diff:
  description:
    - Before and after, as shown by C(--diff).
    - With O(snapshots), the entries of every item, in the order of the items.
  returned: when diff mode is on
  type: list
  elements: dict
snapshots:
  description:
    - With O(snapshots), the result of each item, in the order of the items - the fields the single form
      returns (RV(domain), RV(snapshot), RV(deleted), RV(actions), ...), and these.
  returned: with O(snapshots)
  type: list
  elements: dict
  contains:
    domain:
      description: Name of the domain.
      type: str
      sample: web01
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
      sample: "Failed to find domain web04: no domain with that name at qemu:///system"
    duration:
      description: Seconds this item took (waiting for its domain's lock included).
      returned: unless the item failed before it was converged (its options refused)
      type: float
      sample: 0.42
'''

from ansible_collections.lifecycle.libvirt.plugins.module_utils._batch import BatchForm
from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import LibvirtModule
from ansible_collections.lifecycle.libvirt.plugins.module_utils._snapshot import (
    SNAPSHOT_ARGUMENT_SPEC, SnapshotSpec, converge_snapshot)

BATCH = BatchForm('snapshots', SNAPSHOT_ARGUMENT_SPEC, identity=('domain', 'name'))
# With snapshots the top-level domain is only the items' default.
ARGUMENT_SPEC = dict(SNAPSHOT_ARGUMENT_SPEC, domain=dict(type='str'), **BATCH.argument_spec())


def main():
    module = LibvirtModule(argument_spec=ARGUMENT_SPEC, required_one_of=[('domain', 'snapshots')],
                           supports_check_mode=True)
    module.run(lambda client: BATCH.converge(
        module.params, SnapshotSpec, lambda spec: converge_snapshot(client, spec, module.check_mode), module._diff))


if __name__ == '__main__':
    main()
