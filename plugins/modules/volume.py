#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: volume
short_description: Create, grow, copy, upload, download and delete libvirt storage volumes
version_added: 0.1.0
description:
  - Converges one volume of a libvirt storage pool to V(present) or V(absent).
  - A new volume is empty (sparse unless O(allocation) says otherwise), a qcow2
    copy-on-write overlay of O(backing_volume), a full copy of O(clone_from), or
    holds the bytes of O(content_from). These sources only matter when the volume
    is created; an existing volume is never refilled.
  - An existing volume is grown to O(capacity); it is only shrunk with O(allow_shrink=true).
options:
  pool:
    description: Name of the pool (it must be active).
    type: str
    default: default
  name:
    description:
      - Name of the volume (in a directory pool, its file name).
      - Names containing C(/), C(..) or NUL are refused before anything is touched.
      - Required unless O(volumes) is given.
    type: str
  state:
    description:
      - V(present) creates the volume or converges its size.
      - V(absent) deletes it (see O(force), O(wipe)). A volume a running domain uses is never deleted.
    type: str
    choices: [present, absent]
    default: present
  capacity: &capacity
    description:
      - Size the guest sees, as bytes (V(10737418240)) or with a unit (V(512M), V(10G),
        V(1.5GiB); K/M/G/T and KiB/MiB/... are powers of 1024, KB/MB/GB/... powers of 1000).
      - Required to create a volume unless O(backing_volume), O(clone_from) or
        O(content_from) gives it (then it defaults to their size).
      - qcow2 capacities are rounded up to whole 512-byte sectors, as qemu-img does. A qcow2
        volume of capacity 0 is refused (libvirt would report its header size, so it could
        never converge).
      - With O(backing_volume) or O(clone_from), a capacity smaller than the source's is refused;
        an overlay would cut off the end of the guest's disk, and libvirt copies the whole
        source into a clone anyway.
      - A larger capacity grows an existing volume; a smaller one needs O(allow_shrink).
        A volume a running domain uses is not resized (use the guest's block resize).
    type: raw
  allocation: &allocation
    description:
      - Bytes to allocate up front when the volume is created (same units as O(capacity)).
        Default 0 - sparse. Not compared afterwards, as writes change it.
    type: raw
  format: &format
    description:
      - Format of a new volume. Defaults to V(qcow2) for O(backing_volume), to the source's
        format for O(clone_from) and to V(raw) otherwise.
      - An existing volume of another format is not converted; the task fails.
    type: str
    choices: [raw, qcow2]
  mode: &mode
    description:
      - Permissions of a new volume's file. New volumes get V('0600') when it is not given,
        so they are not world-readable.
      - Read as M(ansible.builtin.file) reads it. A string is octal (V('0640') or V('640')).
        An integer is the mode's value itself, which is what YAML makes of an unquoted
        V(0640) (the integer 416), so that works too; an unquoted V(640) is the decimal
        640 (octal 1200), as with M(ansible.builtin.file) - quote modes. Integers above
        4095 (octal 7777) are refused.
      - libvirt cannot change an existing volume's mode; a different one fails the task.
    type: raw
  backing_volume: &backing_volume
    description:
      - Create the volume as a qcow2 copy-on-write overlay of this volume (a golden
        image) of O(source_pool). It is instant, and only the changes take space.
      - An existing volume with another backing file fails the task.
    type: str
  clone_from: &clone_from
    description: Create the volume as a full copy of this volume of O(source_pool).
    type: str
  source_pool: &source_pool
    description: Pool of O(backing_volume) or O(clone_from). Defaults to O(pool).
    type: str
  content_from: &content_from
    description:
      - Create the volume and upload this file (on the host where the module runs)
        into it through libvirt's stream API. The bytes are copied as they are, so
        O(format) must match the file (a qcow2 image needs V(format=qcow2)).
      - The file goes into a temporary volume C(.<name>.partial-<random>) of the pool, is read
        back and compared (size and sha256), and only then gets the volume's name, so that a
        failed or interrupted upload (disk full, SIGTERM, a dropped connection) never leaves
        a volume with part of the content. What a killed run leaves is removed by the next
        run, which uploads again; when it finds such a leftover next to a volume of the name
        that does not hold this file (a copy into place cut short), it deletes that volume
        and uploads again.
    type: path
  download_to: &download_to
    description:
      - Copy the volume's content (the bytes of its file, holes kept) to this file on the
        host where the module runs, mode 0600. The file is replaced only once the whole
        content has arrived, and only when it differs from the volume.
      - Refuses a directory, anything that is not a regular file (a device node, a FIFO, a
        socket) and any path that is storage libvirt uses (a volume, a disk of any domain, a
        snapshot file), compared by identity. A symlink is followed.
      - The content is written to C(.<file>.download-<random>) next to it and renamed into
        place; a failure, SIGTERM or SIGINT removes that file, and the next run removes one
        a killed run left.
    type: path
  allow_shrink:
    description: Allow a smaller O(capacity) to shrink the volume. The data beyond the new end is lost.
    type: bool
    default: false
  force:
    description:
      - Delete (O(state=absent)) a volume that a defined (stopped) domain or a snapshot uses,
        or that is the backing file of an overlay. A volume a running domain uses is never deleted.
      - See the notes for who counts as a user of a volume.
    type: bool
    default: false
  allowed_users:
    description:
      - With O(state=absent), names of domains whose use of the volume does not block the
        deletion, as long as they are not running (their snapshots do not block either).
        Every other user still blocks; a running domain always does.
      - Meant for the owner of the volume, for example a VM being decommissioned.
    type: list
    elements: str
    default: []
  wipe: &wipe
    description:
      - With O(state=absent), wipe the volume with this algorithm before deleting it
        (see M(lifecycle.libvirt.wipe)).
    type: str
    choices: [zero, nnsa, dod, bsi, gutmann, schneier, pfitzner7, pfitzner33, random, trim]
  cloud_init:
    description:
      - Make the volume a cloud-init NoCloud seed - a raw ISO 9660 image labelled C(cidata) holding
        C(meta-data), C(user-data) and, when given, C(network-config) - built where the module
        runs (with the Python library pycdlib) and uploaded through libvirt's stream API, so it
        works on a remote hypervisor too. Attach it to the domain as a CD-ROM.
      - Idempotent by content - the volume is read back and the files in it compared - since
        an ISO holds the time it was built. When the content changed the volume is deleted and
        uploaded again (actions C(delete), C(upload)), RV(reboot_required) is V(true) and a warning
        says to reboot the domains using it (cloud-init reads the seed at boot). As for any
        deletion, a running domain using the volume is refused.
      - Not used with O(capacity), O(allocation), O(format), O(backing_volume), O(clone_from),
        O(content_from) or O(download_to). libvirt reports the volume's format (C(iso) in a directory pool).
    type: dict
    suboptions:
      user_data:
        description:
          - A dict, rendered as C(#cloud-config) (in JSON form - a subset of YAML that needs no YAML
            library where the module runs - with sorted keys), or text used as it is (a
            C(#cloud-config) document, a script, a MIME multipart).
          - C(#cloud-config) is checked with C(cloud-init schema) when cloud-init is installed where
            the module runs, and refused when the check fails; RV(cloud_init_validation) says whether
            it was checked.
          - Required.
        type: raw
      meta_data:
        description:
          - A dict or text. Without an C(instance-id) in a dict, one is made of the volume's name and a
            hash of the content, so that cloud-init treats new content as a new instance and applies it.
        type: raw
      network_config:
        description: Network configuration (version 1 or 2), a dict or text.
        type: raw
  url:
    description:
      - Create the volume with the content of this C(http://) or C(https://) URL (a cloud image, say),
        downloaded where the module runs into a private temporary file, verified against O(checksum),
        and only then uploaded through libvirt's stream API (see O(content_from)). A wrong checksum,
        an unreachable URL or a download cut short fails the task and leaves no volume and no file.
      - When the volume exists it is read back through libvirt and hashed, and nothing is downloaded;
        holding the checksum's content it is unchanged, holding anything else it is refused (never
        overwritten; it may be a disk a guest wrote to).
      - Check mode downloads too (to a temporary file it removes), since only the download says
        whether the URL answers, the checksum matches and how large the volume will be.
      - With O(format) (for example V(qcow2) for a cloud image); not used with O(backing_volume),
        O(clone_from), O(content_from) or O(cloud_init). Requires O(checksum).
    type: str
  checksum:
    description: The content's checksum, V(sha256:) followed by 64 hexadecimal digits; required with O(url).
    type: str
  volumes:
    description:
      - Converge many volumes in one task - one module run and one connection - instead of the top-level
        O(name), for example the disks of many VMs made from one golden image.
      - Each item takes the options of the single form (not O(cloud_init), O(url) or O(checksum)); an option an
        item leaves out (or sets to null) takes the value given at the top level of the task, so the top-level
        options are the defaults of every item.
      - Up to O(parallel) volumes are converged at once. Every item is converged exactly as the single form
        converges it, with the same checks, check mode, diff and idempotency. An item that fails does not stop
        the others; the task then fails at the end, naming each failed volume and why, and RV(volumes) reports
        every item.
      - A batch that names one volume (pool and name) twice is refused before anything is done. The items run
        in any order; when one volume depends on another of the batch (an overlay of a new volume, the backing
        file of an overlay to delete), use O(parallel=1), which converges the items one after the other, in order.
      - On SIGTERM or SIGINT the volumes not yet started are not started (they fail, saying so); those being
        converged finish first.
    type: list
    elements: dict
    suboptions:
      pool:
        description: The O(pool) of this volume; the top-level O(pool) when omitted.
        type: str
      name:
        description: Name of the volume; the top-level O(name) is not used with O(volumes), so every item gives it.
        type: str
      state:
        description: The O(state) of this volume; the top-level O(state) when omitted.
        type: str
        choices: [present, absent]
      capacity: *capacity
      allocation: *allocation
      format: *format
      mode: *mode
      backing_volume: *backing_volume
      clone_from: *clone_from
      source_pool: *source_pool
      content_from: *content_from
      download_to: *download_to
      allow_shrink:
        description: The O(allow_shrink) of this volume; the top-level O(allow_shrink) when omitted.
        type: bool
      force:
        description: The O(force) of this volume; the top-level O(force) when omitted.
        type: bool
      allowed_users:
        description: The O(allowed_users) of this volume; the top-level O(allowed_users) when omitted.
        type: list
        elements: str
      wipe: *wipe
  parallel:
    description:
      - With O(volumes), how many volumes are converged at once (each by a thread of the module, sharing its
        connection).
    type: int
    default: 8
extends_documentation_fragment:
  - lifecycle.libvirt.connection
  - lifecycle.libvirt.attributes
  - lifecycle.libvirt.volume_users
  - lifecycle.libvirt.attributes.planned
attributes:
  diff_mode:
    support: full
    details: Shows format, capacity, backing file, mode and path before and after, and whether O(download_to) is rewritten.
  idempotent:
    support: full
    details: A second run with the same options finds the volume as declared and the O(download_to) file up to date.
seealso:
  - module: lifecycle.libvirt.pool
  - module: lifecycle.libvirt.wipe
  - module: lifecycle.libvirt.volume_info
author:
  - lifecycle.libvirt contributors (@lifecycle-libvirt)
'''

EXAMPLES = r'''
- name: The system and data disks of several VMs in one task
  lifecycle.libvirt.volume:
    pool: default
    format: qcow2
    volumes:
      - name: web01-root.qcow2
        backing_volume: debian-12-golden.qcow2
      - name: web02-root.qcow2
        backing_volume: debian-12-golden.qcow2
      - name: web01-data.qcow2
        capacity: 20G

- name: An empty 20 GiB qcow2 data disk
  lifecycle.libvirt.volume:
    pool: default
    name: web01-data.qcow2
    capacity: 20G
    format: qcow2

- name: A guest's system disk as a copy-on-write overlay of a golden image
  lifecycle.libvirt.volume:
    name: web01-root.qcow2
    backing_volume: debian-12-golden.qcow2
    capacity: 40G

- name: A full copy of the golden image from another pool
  lifecycle.libvirt.volume:
    pool: guests
    name: web02-root.qcow2
    clone_from: debian-12-golden.qcow2
    source_pool: images

- name: Upload an image file from the hypervisor into a new volume
  lifecycle.libvirt.volume:
    name: debian-12-golden.qcow2
    content_from: /srv/images/debian-12-genericcloud-amd64.qcow2
    format: qcow2

- name: Back a volume up to a file
  lifecycle.libvirt.volume:
    name: web01-data.qcow2
    download_to: /srv/backup/web01-data.qcow2

- name: Shrink a raw volume (data beyond 10 GiB is lost)
  lifecycle.libvirt.volume:
    name: scratch.raw
    capacity: 10G
    allow_shrink: true

- name: A cloud image from its publisher, verified (a second run downloads nothing)
  lifecycle.libvirt.volume:
    name: debian-12-genericcloud-amd64.qcow2
    format: qcow2
    url: https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2
    checksum: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef

- name: A cloud-init seed for web01 (attach it as a CD-ROM)
  lifecycle.libvirt.volume:
    name: web01-seed.iso
    cloud_init:
      meta_data:
        instance-id: web01-1
        local-hostname: web01
      user_data:
        users:
          - name: admin
            ssh_authorized_keys: ["{{ lookup('ansible.builtin.file', '~/.ssh/id_ed25519.pub') }}"]
        packages: [qemu-guest-agent]

- name: Wipe and delete a volume
  lifecycle.libvirt.volume:
    name: web01-data.qcow2
    state: absent
    wipe: zero
'''

RETURN = r'''
name:
  description: Name of the volume.
  returned: without O(volumes)
  type: str
pool:
  description: Name of its pool.
  returned: without O(volumes)
  type: str
state:
  description: The declared state.
  returned: without O(volumes)
  type: str
path:
  description: Path of the volume; null when absent.
  returned: success, without O(volumes)
  type: str
  sample: /var/lib/libvirt/images/web01-data.qcow2
key:
  description: libvirt's key of the volume (its path in directory pools); null when absent.
  returned: success, without O(volumes)
  type: str
capacity:
  description: Capacity in bytes; null when absent.
  returned: success, without O(volumes)
  type: int
  sample: 21474836480
allocation:
  description: Bytes allocated on disk (in check mode, of a new volume, the requested O(allocation) or 0); null when absent.
  returned: success, without O(volumes)
  type: int
  sample: 200704
format:
  description: Format of the volume; null when absent.
  returned: success, without O(volumes)
  type: str
  sample: qcow2
backing:
  description: Path of the backing file of an overlay; null otherwise.
  returned: success, without O(volumes)
  type: str
mode:
  description: Permissions of the volume's file; null when absent.
  returned: success, without O(volumes)
  type: str
  sample: '0600'
actions:
  description:
    - The actions taken (or, in check mode, that would be taken), in order.
    - Each is one of V(create), V(create_overlay), V(clone), V(upload), V(resize), V(download), V(wipe) or
      V(delete).
  returned: without O(volumes)
  type: list
  elements: str
  sample: [create_overlay]
duration:
  description: Seconds the task took, measured on a monotonic clock.
  returned: always
  type: float
  sample: 0.08
url:
  description: With O(url), the URL.
  returned: when O(url) is given
  type: str
downloaded:
  description: With O(url), whether the image was downloaded (false when the volume already held it).
  returned: when O(url) is given
  type: bool
reboot_required:
  description: With O(cloud_init), whether the seed was replaced, so that domains using it must reboot for cloud-init to read it.
  returned: when O(cloud_init) is given
  type: bool
cloud_init_validation:
  description: With O(cloud_init), whether and how the user-data was validated.
  returned: when O(cloud_init) is given
  type: str
  sample: "not validated: cloud-init is not installed where the module runs"
diff:
  description:
    - Before and after, as shown by C(--diff).
    - With O(volumes), the entries of every item, in the order of the items.
  returned: when diff mode is on
  type: list
  elements: dict
volumes:
  description:
    - With O(volumes), the result of each item, in the order of the items - the fields the single form
      returns (RV(name), RV(pool), RV(path), RV(capacity), RV(actions), ...), and these.
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
      sample: "Failed to find storage pool nope: no pool with that name at qemu:///system"
    duration:
      description: Seconds this item took (waiting for its volume's lock included).
      returned: unless the item failed before it was converged (its options refused)
      type: float
      sample: 0.08
'''

from ansible_collections.lifecycle.libvirt.plugins.module_utils._batch import BatchForm
from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import LibvirtModule
from ansible_collections.lifecycle.libvirt.plugins.module_utils._fetch import URL_ARGUMENT_SPEC, converge_url_volume
from ansible_collections.lifecycle.libvirt.plugins.module_utils._seed import CLOUD_INIT_SPEC, converge_seed
from ansible_collections.lifecycle.libvirt.plugins.module_utils._volume import (
    VOLUME_ARGUMENT_SPEC, VOLUME_MUTUALLY_EXCLUSIVE, VolumeSpec, converge_volume_spec, volume_label)

BATCH = BatchForm('volumes', VOLUME_ARGUMENT_SPEC, identity=('name', 'pool'), label=volume_label)
# With volumes the top-level name is only the items' default.
ARGUMENT_SPEC = dict(VOLUME_ARGUMENT_SPEC, name=dict(type='str'), cloud_init=CLOUD_INIT_SPEC, **URL_ARGUMENT_SPEC)
ARGUMENT_SPEC.update(BATCH.argument_spec(mutually_exclusive=VOLUME_MUTUALLY_EXCLUSIVE))
SINGLE_FORM_ONLY = [('volumes', option) for option in ('name', 'cloud_init', 'url')]


def main():
    module = LibvirtModule(argument_spec=ARGUMENT_SPEC, required_one_of=[('name', 'volumes')],
                           mutually_exclusive=VOLUME_MUTUALLY_EXCLUSIVE + SINGLE_FORM_ONLY,
                           required_together=[('url', 'checksum')], supports_check_mode=True)
    params = module.params
    if params['cloud_init'] is not None:
        module.run(lambda client: converge_seed(client, params, module.check_mode))
    elif params['url'] is not None:
        module.run(lambda client: converge_url_volume(client, params, module.check_mode))
    else:
        module.run(lambda client: BATCH.converge(
            params, VolumeSpec, lambda spec: converge_volume_spec(client, spec, module.check_mode), module._diff))


if __name__ == '__main__':
    main()
