# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wipe a volume through libvirt, and prove that it reads as zeros."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.lifecycle.libvirt.plugins.module_utils._changes import Changes, diff_entry
from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import OperationFailed, libvirt
from ansible_collections.lifecycle.libvirt.plugins.module_utils._interrupt import Interrupted, interruptible, run_blocking, signal_name
from ansible_collections.lifecycle.libvirt.plugins.module_utils._storage import BUSY_POLL, VolumeFacts, check_name, lookup_pool, refresh
from ansible_collections.lifecycle.libvirt.plugins.module_utils._streams import ZEROS, read_volume
from ansible_collections.lifecycle.libvirt.plugins.module_utils._usage import refuse_if_used
from ansible_collections.lifecycle.libvirt.plugins.module_utils._wait import Stopwatch

# libvirt's wipe patterns (virStorageVolWipeAlgorithm), by the names virsh uses.
WIPE_ALGORITHMS = ('zero', 'nnsa', 'dod', 'bsi', 'gutmann', 'schneier', 'pfitzner7', 'pfitzner33', 'random', 'trim')

WIPE_ARGUMENT_SPEC = dict(
    pool=dict(type='str', default='default'),
    name=dict(type='str'),
    path=dict(type='path'),
    algorithm=dict(type='str', default='zero', choices=list(WIPE_ALGORITHMS)),
    force=dict(type='bool', default=False),
    allowed_users=dict(type='list', elements='str', default=[]),
    verify=dict(type='bool', default=False),
)

# The one step (the name users see in `actions`).
WIPE = 'wipe'


def wipe_algorithm(name):
    return getattr(libvirt, 'VIR_STORAGE_VOL_WIPE_ALG_%s' % name.upper())


def _busy(exc):
    """Whether libvirt refused because a job (a wipe, an upload, a download,
    maybe of an interrupted earlier run) holds the volume."""
    return exc.get_error_code() == libvirt.VIR_ERR_OPERATION_INVALID and 'still in use' in exc.get_error_message()


def while_busy(what, operation, *args, **kwargs):
    """Run `operation`; while libvirt says a job holds the volume, wait and
    try again.  Returns warnings (how long it waited)."""
    watch = Stopwatch()
    while True:
        try:
            operation(*args, **kwargs)
            break
        except libvirt.libvirtError as exc:  # `operation` is any call; only "busy" (see _busy) is waited out
            if not _busy(exc):
                raise OperationFailed('Failed to %s: %s' % (what, exc.get_error_message()), exc.get_error_code())
        time.sleep(BUSY_POLL)
    if watch.elapsed >= BUSY_POLL:
        return ['Waited %.0f s to %s: another job in libvirtd (an earlier wipe, upload or download that may have '
                'been interrupted) held the volume' % (watch.elapsed, what)]
    return []


def wipe_through_libvirt(volume, label, algorithm):
    """Wipe in a worker thread, so that SIGTERM/SIGINT are handled while it
    runs.  libvirt cannot abort a wipe: on a signal the module ends, says
    that the wipe goes on in libvirtd, and a re-run waits for it."""
    try:
        return while_busy('wipe %s' % label, run_blocking, volume.wipePattern, wipe_algorithm(algorithm), 0,
                          grace=0)
    except Interrupted as exc:
        if exc.outcome is not None and not exc.outcome.finished:
            raise OperationFailed('Interrupted by %s while libvirtd wipes %s: libvirt cannot abort a wipe, so it goes '
                                  'on in libvirtd until the whole volume is written. Run the task again: it waits '
                                  'for that wipe to end, then finishes its work.' % (signal_name(exc.signum), label),
                                  changed=True, wipe_running=True)
        raise


class WipeTarget:
    """The volume a wipe names - by path, or by pool and name - looked up,
    with its options; `path`, `pool` and `name` are libvirt's."""

    def __init__(self, client, params):
        self.params = params
        if params['path'] is not None:
            self.volume = client.volume_by_path(params['path'])
            if self.volume is None:
                raise OperationFailed('Failed to find a volume with path %s: libvirt knows no volume there'
                                      % params['path'])
            self.label = 'volume %s' % params['path']
        else:
            pool_name = check_name(params['pool'], 'pool name')
            name = check_name(params['name'], 'volume name')
            pool = lookup_pool(client, pool_name)
            refresh(pool)
            self.volume = client.require_volume(pool, name)
            self.label = 'volume %s/%s' % (pool_name, name)
        self.name = client.call('read the name of %s' % self.label, self.volume.name)
        self.path = client.call('read the path of %s' % self.label, self.volume.path)
        self.pool = client.call('find the pool of %s' % self.label, self.volume.storagePoolLookupByVolume).name()


def wipe_label(values):
    """The volume of a batch item: its path, or pool/name (None while it names none)."""
    if values['path'] is not None:
        return values['path']
    return '%s/%s' % (values['pool'], values['name']) if values['name'] is not None else None


def wipe_volume(client, target, check_mode):
    """Wipe the volume of a `WipeTarget`; a zero-wipe of a volume that
    already reads as zeros changes nothing."""
    with interruptible():
        return _wipe_volume(client, target, check_mode)


def _wipe_volume(client, target, check_mode):
    params, volume, label = target.params, target.volume, target.label
    algorithm = params['algorithm']
    facts = VolumeFacts(client, volume)
    refuse_if_used(client, facts, 'wipe %s' % label, params['force'], params['allowed_users'])
    changes = Changes(check_mode)
    already_zero = None
    if algorithm == 'zero':
        # Nothing allocated reads as zeros; otherwise read it to be sure.
        already_zero = facts.allocation == 0 or ZeroCheck(client, volume).all_zero
    result = dict(path=facts.path, pool=target.pool, name=target.name, algorithm=algorithm, size=facts.physical, actions=changes.actions,
                  diff=[diff_entry(label, [('content', 'all zeros' if already_zero else 'data')],
                                   [('content', 'all zeros' if algorithm == 'zero' else 'overwritten (%s)' % algorithm)])])
    with changes.reporting(result):
        if not already_zero:
            result['warnings'] = changes.apply(WIPE, wipe_through_libvirt, volume, label, algorithm) or []
        verified, checked = already_zero is True, facts.physical if already_zero else 0
        if params['verify'] and not check_mode and not already_zero:
            check = ZeroCheck(client, volume)
            if not check.all_zero:
                raise OperationFailed(
                    'Failed to verify the wipe of %s: byte %d is not zero (verify proves that the volume reads as '
                    'zeros, which only algorithm=zero leaves behind; %s overwrote it with other patterns)'
                    % (label, check.first_nonzero, algorithm), verified=False, checked_bytes=check.checked)
            verified, checked = True, check.checked
    result.update(wiped_bytes=facts.physical if changes.changed else 0, verified=verified, checked_bytes=checked)
    return result


class ZeroCheck:
    """Reads a volume and finds its first non-zero byte, if any."""

    def __init__(self, client, volume):
        self.first_nonzero = None
        self.checked, complete = read_volume(client, volume, self._data, lambda _offset, _length: None)
        self.all_zero = complete and self.first_nonzero is None

    def _data(self, offset, data):
        if data == ZEROS[:len(data)]:
            return True
        self.first_nonzero = offset + len(data) - len(data.lstrip(b'\0'))
        return False
