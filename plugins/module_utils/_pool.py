# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Converge a storage pool (a directory pool): define, build, start, stop,
autostart, undefine."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.lifecycle.libvirt.plugins.module_utils import _xml
from ansible_collections.lifecycle.libvirt.plugins.module_utils._changes import Changes, diff_entry
from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import OperationFailed, libvirt
from ansible_collections.lifecycle.libvirt.plugins.module_utils._interrupt import interruptible
from ansible_collections.lifecycle.libvirt.plugins.module_utils._storage import check_name, pool_path, refresh
from ansible_collections.lifecycle.libvirt.plugins.module_utils._usage import is_local
from ansible_collections.lifecycle.libvirt.plugins.module_utils._wait import Stopwatch

POOL_STATES = ('present', 'absent', 'active', 'inactive')

POOL_ARGUMENT_SPEC = dict(
    name=dict(type='str', required=True),
    path=dict(type='path'),
    state=dict(type='str', default='active', choices=list(POOL_STATES)),
    autostart=dict(type='bool'),
    force=dict(type='bool', default=False),
)

# Pools ------------------------------------------------------------------------

def _pool_view(exists, active, autostart, path):
    state = 'absent' if not exists else ('active' if active else 'inactive')
    return [('state', state), ('autostart', str(bool(autostart)).lower()), ('path', path if exists else None)]


def _pool_xml(name, path):
    pool = _xml.etree.Element('pool', type='dir')
    _xml.etree.SubElement(pool, 'name').text = name
    target = _xml.etree.SubElement(pool, 'target')
    _xml.etree.SubElement(target, 'path').text = path
    return _xml.to_text(pool)


def converge_pool(client, params, check_mode):
    # SIGTERM/SIGINT between define and build/start end like any failure:
    # the pool this run defined is undefined again.
    with interruptible():
        return _converge_pool(client, params, check_mode)


def _converge_pool(client, params, check_mode):
    watch = Stopwatch()
    name = check_name(params['name'], 'pool name')
    state, wanted_path, force = params['state'], params['path'], params['force']
    if wanted_path is not None:
        if not os.path.isabs(wanted_path):
            raise OperationFailed('Invalid path %r for pool %s: a pool path must be absolute' % (wanted_path, name))
        wanted_path = os.path.normpath(wanted_path)
    changes = Changes(check_mode)
    pool = client.pool(name)
    exists = pool is not None
    active = bool(client.call('read the state of pool %s' % name, pool.isActive)) if exists else False
    autostart = bool(client.call('read autostart of pool %s' % name, pool.autostart)) if exists else False
    path = pool_path(client, pool)[0] if exists else None
    volumes = None
    if active:
        refresh(pool)
        volumes = client.call('count volumes of pool %s' % name, pool.numOfVolumes)

    steps = []
    if state == 'absent':
        if exists:
            if not force and volumes is None:
                raise OperationFailed('Failed to remove pool %s: it is inactive, so its volumes cannot be counted; '
                                      'start it first, or set force=true' % name)
            if not force and volumes:
                raise OperationFailed('Failed to remove pool %s: it still holds %d volume(s); delete them first, or '
                                      'set force=true (the files stay on disk)' % (name, volumes))
            steps = (['stop'] if active else []) + ['undefine']
        after = (False, False, False, None)
    else:
        if not exists:
            if wanted_path is None:
                raise OperationFailed('Failed to create pool %s: path is required to create a pool' % name)
            if is_local(client) and os.path.lexists(wanted_path) and not os.path.isdir(wanted_path):
                raise OperationFailed('Failed to create pool %s: its path %s exists and is not a directory'
                                      % (name, wanted_path))
            steps = ['define', 'build']
        elif wanted_path is not None and wanted_path != path:
            raise OperationFailed('Failed to converge pool %s: it exists with path %s, not %s; a pool\'s path cannot '
                                  'be changed, remove the pool first' % (name, path, wanted_path))
        will_be_active = active
        if state == 'active' and not active:
            steps.append('start')
            will_be_active = True
        elif state == 'inactive' and active:
            steps.append('stop')
            will_be_active = False
        will_autostart = autostart if params['autostart'] is None else params['autostart']
        if will_autostart != autostart:
            steps.append('set autostart')
        after = (True, will_be_active, will_autostart, path or wanted_path)

    diff = [diff_entry('pool %s' % name, _pool_view(exists, active, autostart, path), _pool_view(*after))]
    result = dict(name=name, actions=changes.actions, diff=diff)
    handle = [pool]

    def perform(step):
        if step == 'define':
            handle[0] = client.call('define pool %s' % name, client.conn.storagePoolDefineXML,
                                    _pool_xml(name, wanted_path), 0)
        elif step == 'build':
            client.call('build pool %s' % name, handle[0].build, 0)
        elif step == 'start':
            client.call('start pool %s' % name, handle[0].create, 0)
        elif step == 'stop':
            client.call('stop pool %s' % name, handle[0].destroy)
        elif step == 'set autostart':
            client.call('set autostart of pool %s' % name, handle[0].setAutostart, int(params['autostart']))
        elif step == 'undefine':
            client.call('undefine pool %s' % name, handle[0].undefine)

    try:
        for step in steps:
            changes.apply(step, perform, step)
    except OperationFailed as exc:
        if 'define' in changes.actions:
            _undefine_after_failure(client, handle[0], changes, exc)
        exc.result.update(result, changed=changes.changed, duration=watch.rounded())
        raise
    result.update(state=_pool_view(*after)[0][1], autostart=after[2], path=after[3],
                  volumes=volumes if state != 'absent' else None,
                  changed=changes.changed, duration=watch.rounded())
    return result


def _undefine_after_failure(client, pool, changes, exc):
    """A pool this run defined and could not build or start is undefined
    again, so that a failed run leaves nothing behind."""
    try:
        if pool.isActive():
            pool.destroy()
        pool.undefine()
    except libvirt.libvirtError as error:
        exc.args = ('%s (the pool this run defined is left defined: undefining it failed: %s)'
                    % (exc, error.get_error_message()),)
        return
    del changes.actions[:]
    exc.args = ('%s (the pool this run defined was undefined again)' % exc,)
