# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every storage module reads: checked names, sizes and modes, the pools
and the facts of a volume.

The storage logic is split by concern, each importing only what is below it:
`_storage` (this file) < `_usage` (who uses a volume) < `_streams` (upload,
download, temporary volumes) < `_wipe` < `_volume` (converge a volume);
`_pool` and `_volume_info` use this file and `_usage`.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import time

from ansible_collections.lifecycle.libvirt.plugins.module_utils import _xml
from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import OperationFailed, libvirt
from ansible_collections.lifecycle.libvirt.plugins.module_utils._sizes import SizeError, parse_size, scaled_bytes
from ansible_collections.lifecycle.libvirt.plugins.module_utils._wait import Stopwatch

DEFAULT_MODE = '0600'
# qemu-img keeps qcow2 capacities in whole sectors.
QCOW2_SECTOR = 512
STREAM_CHUNK = 256 * 1024
# Seconds between two tries of a call libvirt refuses while a job holds the volume or pool.
BUSY_POLL = 1.0


def check_name(name, what):
    """Refuse names that could leave the pool's directory or cut a C string."""
    if name is None:
        return None
    if not name or '/' in name or '\0' in name or '..' in name:
        raise OperationFailed('Invalid %s %r: a name must not be empty or contain "/", ".." or NUL' % (what, name))
    return name


def size_param(params, key):
    if params.get(key) is None:
        return None
    try:
        return parse_size(params[key], key)
    except SizeError as exc:
        raise OperationFailed('Invalid %s: %s' % (key, exc))


def mode_param(value):
    """A mode as Ansible's file module reads it: a string is octal ('0600' or
    '600' -> 0o600); an integer is the mode's value itself, which is what an
    unquoted YAML 0640 becomes (416 -> 0o640)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value <= 0o7777:
            raise OperationFailed('Invalid mode %d: as an integer it is the mode itself (YAML reads an unquoted '
                                  '0640 as 416), so it must be 0 to 4095; write an octal string such as "0600"'
                                  % value)
        return value
    text = str(value).strip()
    if not re.match(r'^0?[0-7]{3,4}$', text):
        raise OperationFailed('Invalid mode %r: write an octal string such as "0600" (quote it in YAML)' % (value,))
    return int(text, 8)


def mode_text(mode):
    return None if mode is None else '%04o' % mode


# Lookups and XML -------------------------------------------------------------

def refresh(pool):
    """Re-read the pool's directory so files made outside libvirt count.
    Best effort: libvirt refuses while a job (a wipe, an upload, a clone)
    runs in the pool, and the volumes it already knows are enough then."""
    try:
        pool.refresh(0)
    except libvirt.libvirtError:  # best effort, as said: whatever the refusal, the known volumes stand
        pass


def lookup_pool(client, name):
    """The active pool `name`; its absence or inactivity is an error naming it."""
    pool = client.require_pool(name)
    if not client.call('read the state of pool %s' % name, pool.isActive):
        raise OperationFailed('Failed to use storage pool %s: it is not active' % name)
    return pool


class VolumeFacts:
    """What a volume's XML says, in bytes and plain strings."""

    def __init__(self, client, volume):
        root = _xml.parse_xml(client.call('read volume %s' % volume.name(), volume.XMLDesc, 0), 'volume XML')
        self.name = root.findtext('name')
        self.key = root.findtext('key')
        self.path = root.findtext('target/path')
        self.format = root.find('target/format').get('type') if root.find('target/format') is not None else None
        self.capacity = _bytes(root.find('capacity'))
        self.allocation = _bytes(root.find('allocation'))
        physical = _bytes(root.find('physical'))
        self.physical = physical if physical is not None else self.capacity
        self.backing = root.findtext('backingStore/path')
        mode = root.findtext('target/permissions/mode')
        self.mode = int(mode, 8) if mode else None

    def result(self):
        return dict(path=self.path, key=self.key, capacity=self.capacity, allocation=self.allocation,
                    format=self.format, backing=self.backing, mode=mode_text(self.mode))


def _bytes(element):
    if element is None:
        return None
    return scaled_bytes(element) if element.get('unit') else int(element.text)


def pool_path(client, pool):
    root = _xml.parse_xml(client.call('read pool %s' % pool.name(), pool.XMLDesc, 0), 'pool XML')
    return root.findtext('target/path'), root.get('type')


def refresh_after_change(client, pool, timeout=300):
    """Re-read the pool after a file changed under libvirt, waiting while a
    job (a wipe, an upload) keeps libvirt from refreshing it."""
    watch = Stopwatch()
    what = 're-read pool %s after changing it (run virsh pool-refresh %s)' % (pool.name(), pool.name())
    while True:
        try:
            client.call(what, pool.refresh, 0)
            return
        except OperationFailed:
            # libvirt refuses a refresh while a job runs in the pool with a
            # generic error code, so every refusal waits, up to the timeout.
            if watch.elapsed > timeout:
                raise
        time.sleep(BUSY_POLL)
