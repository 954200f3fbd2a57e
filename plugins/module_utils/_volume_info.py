# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The facts of one volume or of every volume of a pool, with their users."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import OperationFailed, libvirt
from ansible_collections.lifecycle.libvirt.plugins.module_utils._storage import VolumeFacts, check_name, lookup_pool, refresh
from ansible_collections.lifecycle.libvirt.plugins.module_utils._usage import StorageUsage

VOLUME_INFO_ARGUMENT_SPEC = dict(
    pool=dict(type='str', default='default'),
    name=dict(type='str'),
)


def volume_info(client, params):
    """The facts of the volume `params['name']` of the pool, or of all its
    volumes: what the volume XML says, who uses each (`users`) and the images
    below it (`backing_chain`), both decided by identity in `_usage`."""
    pool_name = check_name(params['pool'], 'pool name')
    name = check_name(params['name'], 'volume name')
    pool = lookup_pool(client, pool_name)
    refresh(pool)
    if name is not None:
        volume = client.require_volume(pool, name)
        volumes = [(volume, VolumeFacts(client, volume))]
    else:
        volumes = _listed_volume_facts(client, pool)
    usage = StorageUsage(client)
    facts = [dict(volume_facts.result(), name=volume.name(), pool=pool_name,
                  users=usage.users(volume_facts.path, volume_facts.key),
                  backing_chain=usage.backing_chain(volume_facts.path)) for volume, volume_facts in volumes]
    return dict(changed=False, volumes=sorted(facts, key=lambda item: item['name']))


def _listed_volume_facts(client, pool, attempts=3):
    """(volume, facts) of every volume of `pool`.  Another client's pool
    refresh drops libvirt's volume list for a moment, so a volume listed can
    be "not found" when read: list again, and leave a volume out only when
    it stays gone (it was deleted)."""
    for attempt in range(1, attempts + 1):
        listed, vanished = [], False
        for volume in client.call('list volumes of pool %s' % pool.name(), pool.listAllVolumes, 0):
            try:
                listed.append((volume, VolumeFacts(client, volume)))
            except OperationFailed as exc:
                if exc.libvirt_code != libvirt.VIR_ERR_NO_STORAGE_VOL:
                    raise
                vanished = True
        if not vanished or attempt == attempts:
            return listed
        time.sleep(0.5)
