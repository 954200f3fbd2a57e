#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: migrate
short_description: Move a libvirt domain to another host, live or offline
version_added: 0.1.0
description:
  - Moves one domain from the host of O(uri) (the source) to the host of O(dest_uri)
    (the destination). A running guest keeps running while its memory is copied
    (live migration); a stopped persistent domain moves only its definition
    (O(offline=true)).
  - Declares where the domain should be, so it is idempotent. When the domain runs
    on the destination and not on the source (or, for O(offline=true), is defined
    on the destination and not on the source) nothing is done and C(changed) is
    false. When neither host has it, or both run it, the task fails and says so.
  - Before anything moves, and in check mode too, it checks that the destination
    can take the guest and returns the results as RV(checks). A failed check stops
    the task with a message naming the check, and nothing is moved.
  - Checks, in order - C(destination_reachable); C(hypervisor_type) (the same
    on both hosts); C(versions) (the destination's libvirt and hypervisor are not
    older); C(cpu) (the guest CPU is runnable on the destination, by libvirt's
    hypervisor CPU comparison; C(host-passthrough) CPUs cannot be compared and
    pass); C(disks) (the active storage pools of the destination are refreshed
    and each local disk's source path looked up as a volume; a disk whose
    directory is a pool of the destination but that the pool does not hold is
    missing and fails the check; a disk outside every pool of the destination
    cannot be seen by libvirt, which is not the same as missing - it passes as
    unknown, with a warning, and the migration itself fails if it is not there;
    with O(copy_storage) the destination instead needs a pool whose directory is
    the disk's directory, where libvirt creates the copy);
    C(networks) (the libvirt networks, bridges and C(direct) devices the guest
    uses exist on the destination); C(name_uuid_free) (no domain with the same
    name or uuid on the destination); C(free_memory) (the destination has the
    guest's memory free).
  - A failed migration (including one aborted by O(timeout)) leaves the guest
    running on the source and nothing defined on the destination; the message
    says what failed and where the domain is (a host whose daemon does not answer
    is reported as unknown, after the migration's own error).
  - SIGTERM or SIGINT (an AWX cancel, Ctrl-C) during the migration aborts the
    libvirt job; the guest keeps running on the source and the task fails saying
    so. A job that cannot be aborted any more (post-copy) is reported as still
    running. SIGKILL (the C(async) time limit of Ansible) cannot be handled, see
    O(snapshots) for what survives it.
  - One run at a time migrates a domain from one machine (a lock per domain name);
    a second run waits, then finds the domain moved. A run that finds a migration
    of the domain in progress (started by another run, or by a run that was
    killed while the source daemon carries on) waits for it to end, up to
    O(timeout), and then converges from where the domain is.
  - Passwords in O(uri), O(dest_uri), O(dest_peer_uri) and O(migrate_uri)
    (C(user:password@host) or a query parameter such as C(password=)) are
    replaced by C(********) in every message, result and logged argument; the
    rest of the URI is shown, it says which hosts were used.
options:
  name:
    description: Name of the domain to move.
    type: str
    required: true
  dest_uri:
    description:
      - libvirt URI of the destination host, as the module reaches it (for the checks
        and, without O(p2p), for the migration itself).
    type: str
    required: true
  dest_peer_uri:
    description:
      - With O(p2p=true), the destination URI as the source host's libvirtd reaches it,
        when that differs from O(dest_uri) (for example C(qemu+tcp://kvm02.migration.lan/system)
        when the controller uses C(qemu+ssh://)). Defaults to O(dest_uri).
    type: str
  live:
    description:
      - V(true) keeps the guest running while its memory is copied; V(false) suspends
        it for the whole transfer (shorter in total, longer pause).
      - Defaults to V(true), or V(false) with O(offline=true). Cannot be V(true) with O(offline=true).
    type: bool
  offline:
    description:
      - Move the definition of a stopped persistent domain (no memory, no storage).
        Needs O(persistent=true).
    type: bool
    default: false
  p2p:
    description:
      - Peer-to-peer - the source host's libvirtd talks to the destination itself
        (through O(dest_peer_uri) or O(dest_uri)), not the module.
    type: bool
    default: false
  tunnelled:
    description: Send the migration data through the libvirtd connection instead of a direct QEMU stream. Requires O(p2p=true).
    type: bool
    default: false
  persistent:
    description: Define the domain on the destination (V(false) leaves it transient there).
    type: bool
    default: true
  undefine_source:
    description: Remove the definition from the source once the migration succeeded.
    type: bool
    default: true
  copy_storage:
    description:
      - V(none) - the disks are on storage both hosts share.
      - V(all) - copy every disk to the destination (full copy).
      - V(incremental) - copy only what differs from the destination's images that share the same base.
    type: str
    choices: [none, all, incremental]
    default: none
  postcopy:
    description:
      - Switch to post-copy when pre-copy does not converge (once the first full pass
        over memory is done and another one is needed). Post-copy cannot be aborted,
        so O(timeout) no longer applies once it started.
    type: bool
    default: false
  auto_converge:
    description: Let QEMU slow the guest's vCPUs down when memory is dirtied faster than it is sent.
    type: bool
    default: false
  compressed:
    description: Compress the memory pages sent (QEMU's default method, xbzrle).
    type: bool
    default: false
  bandwidth:
    description: Maximum bandwidth of the migration, in MiB/s.
    type: int
  max_downtime:
    description: Maximum tolerable downtime at the switch-over, in milliseconds.
    type: int
  migrate_uri:
    description:
      - Where the destination receives the data stream, for example C(tcp://10.0.9.2:49152)
        to use a dedicated migration network. Not with O(tunnelled=true).
    type: str
  unsafe:
    description:
      - Migrate even when libvirt considers it unsafe, for example disks on a local
        file system or with a cache mode other than C(none) - libvirt cannot see that a
        directory is shared unless it is NFS, GlusterFS, Ceph or a cluster file system.
      - Only set it when you know the storage is shared and consistent.
    type: bool
    default: false
  timeout:
    description:
      - Seconds after which the migration job is aborted; the guest keeps running on the source.
      - Also how long a run waits for a migration of the domain that is already in progress.
      - No limit when omitted.
    type: int
  snapshots:
    description:
      - libvirt refuses to migrate a domain that has snapshots.
      - V(refuse) makes that a failed C(snapshots) check, before anything moves.
      - V(move) takes the snapshots' metadata off the source, migrates, and redefines them on the
        destination (the current one stays current); if the migration fails they are put back on the
        source. Their data travels with the disks, so internal snapshots need shared storage (not
        O(copy_storage)).
      - Before taking them off, the snapshots' XML is written into the domain's own metadata (a
        C(<metadata>) element in the namespace
        C(https://github.com/lifecycle-libvirt/lifecycle.libvirt/snapshots-in-transit)); it travels
        with the domain and is removed once the move is complete. A run killed at any point, even by
        SIGKILL, loses nothing - the next run (from any controller) finds that journal on the host that
        has the domain, redefines the snapshots there and reports it in RV(repaired); with the domain
        still on the source it puts them back and migrates again. While a move is under way the
        journal holds the snapshots' full XML, graphics passwords included, in the domain's metadata.
    type: str
    choices: [refuse, move]
    default: refuse
extends_documentation_fragment:
  - lifecycle.libvirt.connection
  - lifecycle.libvirt.attributes
attributes:
  check_mode:
    support: full
    details: Check mode connects to both hosts, runs every check and reports the same
      C(changed), C(actions), C(checks), C(repaired) and C(diff) as the real run; nothing moves.
  diff_mode:
    support: full
    details: Shows the host, URI and state of the domain before and after.
  idempotent:
    support: full
    details: Placement is declared - once the domain is on the destination and not on
      the source, the task reports no change.
notes:
  - O(uri) is the source host. Paths in the domain XML (disks, kernel, sockets) must
    be valid on the destination too.
  - A transient domain (O(persistent=false)) ceases to exist on the destination when it stops.
seealso:
  - module: lifecycle.libvirt.domain
  - name: libvirt migration
    description: Modes, flags and network set-up of libvirt migration.
    link: https://libvirt.org/migration.html
author:
  - lifecycle.libvirt contributors (@lifecycle-libvirt)
'''

EXAMPLES = r'''
- name: Live-migrate a guest to kvm02 (shared storage)
  lifecycle.libvirt.migrate:
    uri: qemu+ssh://admin@kvm01.example.com/system
    dest_uri: qemu+ssh://admin@kvm02.example.com/system
    name: web01

- name: Peer-to-peer over a dedicated migration network, giving up after 10 minutes
  lifecycle.libvirt.migrate:
    uri: qemu+ssh://admin@kvm01.example.com/system
    dest_uri: qemu+ssh://admin@kvm02.example.com/system
    dest_peer_uri: qemu+tls://kvm02.migration.example.com/system
    name: db01
    p2p: true
    tunnelled: true
    auto_converge: true
    max_downtime: 300
    timeout: 600

- name: Move a guest with local disks (the destination has a pool in the same directory)
  lifecycle.libvirt.migrate:
    uri: qemu+ssh://admin@kvm01.example.com/system
    dest_uri: qemu+ssh://admin@kvm02.example.com/system
    name: build01
    copy_storage: all
    bandwidth: 200

- name: Move the definition of a stopped guest
  lifecycle.libvirt.migrate:
    uri: qemu+ssh://admin@kvm01.example.com/system
    dest_uri: qemu+ssh://admin@kvm02.example.com/system
    name: spare01
    offline: true

- name: Only check whether kvm02 could take the guest
  lifecycle.libvirt.migrate:
    uri: qemu+ssh://admin@kvm01.example.com/system
    dest_uri: qemu+ssh://admin@kvm02.example.com/system
    name: web01
  check_mode: true
  register: precheck
'''

RETURN = r'''
name:
  description: Name of the domain.
  returned: always
  type: str
  sample: web01
source:
  description: URI of the source host (O(uri)).
  returned: always
  type: str
  sample: qemu+ssh://admin@kvm01.example.com/system
destination:
  description: URI of the destination host (O(dest_uri)).
  returned: always
  type: str
  sample: qemu+ssh://admin@kvm02.example.com/system
state:
  description: State of the domain on the destination after the task (V(running) or V(defined)).
  returned: success
  type: str
  sample: running
checks:
  description:
    - The pre-migration checks, in order. Empty when the domain is already in place.
    - Also returned when the task fails.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: C(destination_reachable), C(hypervisor_type), C(versions), C(cpu), C(disks), C(networks), C(name_uuid_free), C(free_memory) or C(snapshots).
      type: str
    passed:
      description: Whether the check passed.
      type: bool
    detail:
      description: What was found.
      type: str
  sample: [{name: cpu, passed: true, detail: CPU qemu64 is runnable on the destination}]
flags:
  description: The libvirt migration flags used (C(VIR_MIGRATE_*) without the prefix, lower case).
  returned: always
  type: list
  elements: str
  sample: [live, persist_dest, undefine_source]
actions:
  description:
    - V(migrate) when the domain moves (or, in check mode, would move).
    - Before it, V(finish_snapshot_move) or V(undo_snapshot_move) when the run repairs a snapshot move
      an interrupted run left half-done (see RV(repaired)).
  returned: always
  type: list
  elements: str
  sample: [migrate]
repaired:
  description: What this run did about a snapshot move an interrupted run left half-done.
  returned: when there was one
  type: str
  sample: 'the domain is on the destination: the snapshots of an interrupted move are redefined there'
downtime_ms:
  description:
    - Milliseconds the guest was paused at the switch-over, from libvirt's completed job statistics.
    - Null when unavailable (check mode, nothing to do, offline).
  returned: always
  type: int
  sample: 190
bytes_transferred:
  description: Bytes of memory and storage sent, from libvirt's completed job statistics; null when unavailable.
  returned: always
  type: int
  sample: 96213599
snapshots_moved:
  description: Names of the snapshots whose metadata moves (or, in check mode, would move) with the domain.
  returned: always
  type: list
  elements: str
postcopy_started:
  description: Whether the migration switched to post-copy (see O(postcopy)).
  returned: always
  type: bool
migration_ms:
  description: Milliseconds the migration job took, by libvirt's count.
  returned: when the domain moved and libvirt reported it
  type: int
  sample: 917
duration:
  description: Seconds the task took, measured on a monotonic clock.
  returned: always
  type: float
  sample: 1.31
diff:
  description: Host, URI and state before and after (C(before) and C(after) as text), as shown by C(--diff).
  returned: when diff mode is on and the domain moves
  type: dict
'''

from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import LibvirtModule
from ansible_collections.lifecycle.libvirt.plugins.module_utils._migration import MIGRATE_ARGUMENT_SPEC, migrate


def main():
    module = LibvirtModule(argument_spec=MIGRATE_ARGUMENT_SPEC, supports_check_mode=True)
    module.run(lambda client: migrate(client, module.params, module.check_mode))


if __name__ == '__main__':
    main()
