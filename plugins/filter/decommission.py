# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""What decommissioning each VM destroys, decided from facts the modules
computed by identity: domain_info's domains, volume_info's volumes (with
their structured `users`) and snapshot_info's snapshots.  No XML and no
words of `via` are read here."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# The uses of a volume through a disk (see volume_info's users[].use).
_DISK_USES = ('disk', 'backing', 'mirror')


def _key(volume):
    return '%s/%s' % (volume['pool'], volume['name'])


def _data_uses(vm, volume, targets):
    """The users of `volume` that are `vm`'s data: the VM or one of its
    snapshots, through one of its disks (device disk, not a CD-ROM or
    floppy: the disk, its backing chain, a block copy, a snapshot's external
    file or saved disk) or its NVRAM."""
    return [user for user in volume['users']
            if user['domain'] == vm['name'] and user['kind'] in ('domain', 'snapshot')
            and (user['use'] == 'nvram' or (user['use'] in _DISK_USES and user['target'] in targets))]


def _own_levels(used, data_uses):
    """{volume key: level} of the volumes whose every user is the VM's data
    or an overlay volume already found to be the VM's own; overlays get a
    lower level than the images they are built on, so wiping in level order
    never meets a user that still blocks."""
    levels, level = {}, 1
    while True:
        found = [_key(volume) for volume in used if _key(volume) not in levels
                 and all(user in data_uses[_key(volume)] or (user['kind'] == 'volume' and user['name'] in levels)
                         for user in volume['users'])]
        if not found:
            return levels
        levels.update((key, level) for key in found)
        level += 1


def _skip_reason(vm, volume, own):
    others = [user for user in volume['users'] if user['domain'] != vm['name']]
    domains = []
    for user in others:
        if user['kind'] in ('domain', 'snapshot') and user['domain'] not in domains:
            domains.append(user['domain'])
    overlays = [user['name'] for user in others if user['kind'] == 'volume' and user['name'] not in own]
    reasons = (['shared with domain ' + ', '.join(domains)] if domains else []) + \
        (['backing file of ' + ', '.join(overlays)] if overlays else [])
    return '; '.join(reasons) or 'used by domain %s other than as a disk' % vm['name']


def _files(vm, snapshots, covered, managed_save_dir, nvram_dir, save_files):
    """Everything else that held the VM's data and is not a volume of the
    pools read: disk files elsewhere, snapshot overlays elsewhere, the
    managed save image, NVRAM, known save files; each path once."""
    files = [dict(path=disk['source'], kind='disk %s' % disk['target']) for disk in vm['disks']
             if disk['device'] == 'disk' and disk['type'] == 'file' and disk.get('source') and disk['source'] not in covered]
    for snapshot in snapshots:
        files.extend(dict(path=disk['file'], kind='overlay of disk %s (snapshot %s)' % (disk['target'], snapshot['name']))
                     for disk in snapshot['disks']
                     if disk['snapshot'] == 'external' and disk.get('file') and disk['file'] not in covered)
    if vm.get('managed_save'):
        files.append(dict(path='%s/%s.save' % (managed_save_dir, vm['name']), kind='managed save image'))
    files.append(dict(path='%s/%s_VARS.fd' % (nvram_dir, vm['name']), kind='nvram'))
    files.extend(dict(path=path, kind='save file') for path in (save_files or {}).get(vm['name'], []))
    unique, seen = [], set()
    for entry in files:
        if entry['path'] not in seen:
            seen.add(entry['path'])
            unique.append(entry)
    return unique


def decommission_plan(vms, volumes, snapshot_facts, managed_save_dir, nvram_dir, save_files=None):
    """Per VM of `vms` (domain_info's domains): `volumes` - its own volumes
    among `volumes` (volume_info's), in wipe order (`level`); `skipped` - the
    volumes it uses that something else uses too, with why; `files` - its
    data outside those volumes; `snapshots` - their names.
    `snapshot_facts` are snapshot_info's results registered in a loop over
    `vms` with loop_var `vm`."""
    snapshots = dict((facts['vm']['name'], facts['snapshots']) for facts in snapshot_facts)
    plan = []
    for vm in vms:
        targets = [disk['target'] for disk in vm['disks'] if disk['device'] == 'disk']
        used, data_uses = [], {}
        for volume in volumes:
            mine = _data_uses(vm, volume, targets)
            if mine:
                used.append(volume)
                data_uses[_key(volume)] = mine
        levels = _own_levels(used, data_uses)
        own, skipped = [], []
        for volume in used:
            entry = dict(pool=volume['pool'], volume=volume['name'], path=volume['path'], format=volume['format'],
                         capacity=volume['capacity'], allocation=volume['allocation'])
            if _key(volume) in levels:
                own.append(dict(entry, level=levels[_key(volume)]))
            else:
                skipped.append(dict(entry, reason=_skip_reason(vm, volume, levels)))
        covered = set(user['path'] for uses in data_uses.values() for user in uses)
        vm_snapshots = snapshots.get(vm['name'], [])
        plan.append(dict(name=vm['name'], uuid=vm['uuid'], state=vm['state'],
                         volumes=sorted(own, key=lambda item: item['level']), skipped=skipped,
                         files=_files(vm, vm_snapshots, covered, managed_save_dir, nvram_dir, save_files),
                         snapshots=[snapshot['name'] for snapshot in vm_snapshots]))
    return plan


class FilterModule(object):
    def filters(self):
        return {'decommission_plan': decommission_plan}
