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


def _wipe_target(client, params):
    if params['path'] is not None:
        volume = client.volume_by_path(params['path'])
        if volume is None:
            raise OperationFailed('Failed to find a volume with path %s: libvirt knows no volume there'
                                  % params['path'])
        return volume, 'volume %s' % params['path']
    pool_name = check_name(params['pool'], 'pool name')
    name = check_name(params['name'], 'volume name')
    pool = lookup_pool(client, pool_name)
    refresh(pool)
    return client.require_volume(pool, name), 'volume %s/%s' % (pool_name, name)


def wipe_volume(client, params, check_mode):
    """Wipe one volume; a zero-wipe of a volume that already reads as zeros
    changes nothing."""
    with interruptible():
        return _wipe_volume(client, params, check_mode)


def _wipe_volume(client, params, check_mode):
    algorithm = params['algorithm']
    volume, label = _wipe_target(client, params)
    facts = VolumeFacts(client, volume)
    refuse_if_used(client, facts, 'wipe %s' % label, params['force'], params['allowed_users'])
    changes = Changes(check_mode)
    already_zero = None
    if algorithm == 'zero':
        # Nothing allocated reads as zeros; otherwise read it to be sure.
        already_zero = facts.allocation == 0 or ZeroCheck(client, volume).all_zero
    result = dict(path=facts.path, algorithm=algorithm, size=facts.physical, actions=changes.actions,
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
