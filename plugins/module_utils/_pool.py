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
from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import OperationFailed
from ansible_collections.lifecycle.libvirt.plugins.module_utils._interrupt import interruptible
from ansible_collections.lifecycle.libvirt.plugins.module_utils._storage import check_name, pool_path, refresh

POOL_STATES = ('present', 'absent', 'active', 'inactive')

POOL_ARGUMENT_SPEC = dict(
    name=dict(type='str', required=True),
    path=dict(type='path'),
    state=dict(type='str', default='active', choices=list(POOL_STATES)),
    autostart=dict(type='bool'),
    force=dict(type='bool', default=False),
)

# Steps, in the order a run takes them (the names users see in `actions`).
DEFINE = 'define'
BUILD = 'build'
START = 'start'
STOP = 'stop'
SET_AUTOSTART = 'set_autostart'
UNDEFINE = 'undefine'


def _pool_view(exists, active, autostart, path):
    state = 'absent' if not exists else ('active' if active else 'inactive')
    return [('state', state), ('autostart', bool(autostart)), ('path', path if exists else None)]


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
        return PoolConvergence(client, params, check_mode).run()


class PoolConvergence:
    """Observe the pool, plan the steps and the result, carry the steps out."""

    def __init__(self, client, params, check_mode):
        self.client = client
        self.params = params
        self.name = check_name(params['name'], 'pool name')
        self.wanted_path = params['path']
        if self.wanted_path is not None:
            if not os.path.isabs(self.wanted_path):
                raise OperationFailed('Invalid path %r for pool %s: a pool path must be absolute'
                                      % (self.wanted_path, self.name))
            self.wanted_path = os.path.normpath(self.wanted_path)
        self.changes = Changes(check_mode)
        self.pool = client.pool(self.name)

    def run(self):
        client, name, pool = self.client, self.name, self.pool
        exists = pool is not None
        active = bool(client.call('read the state of pool %s' % name, pool.isActive)) if exists else False
        autostart = bool(client.call('read autostart of pool %s' % name, pool.autostart)) if exists else False
        path = pool_path(client, pool)[0] if exists else None
        volumes = None
        if active:
            refresh(pool)
            volumes = client.call('count volumes of pool %s' % name, pool.numOfVolumes)
        steps, after = self._plan(exists, active, autostart, path, volumes)
        result = dict(name=name, actions=self.changes.actions,
                      diff=[diff_entry('pool %s' % name, _pool_view(exists, active, autostart, path),
                                       _pool_view(*after))])
        with self.changes.reporting(result):
            try:
                for step in steps:
                    self.changes.apply(step, self._perform, step)
            except OperationFailed as exc:
                if DEFINE in self.changes.actions:
                    self._undefine_after_failure(exc)
                raise
        result.update(state=_pool_view(*after)[0][1], autostart=after[2], path=after[3],
                      volumes=volumes if self.params['state'] != 'absent' else None)
        return result

    def _plan(self, exists, active, autostart, path, volumes):
        """The steps, and (exists, active, autostart, path) after them."""
        name, state, force, wanted_path = self.name, self.params['state'], self.params['force'], self.wanted_path
        steps = []
        if state == 'absent':
            if exists:
                if not force and volumes is None:
                    raise OperationFailed('Failed to remove pool %s: it is inactive, so its volumes cannot be counted; '
                                          'start it first, or set force=true' % name)
                if not force and volumes:
                    raise OperationFailed('Failed to remove pool %s: it still holds %d volume(s); delete them first, '
                                          'or set force=true (the files stay on disk)' % (name, volumes))
                steps = ([STOP] if active else []) + [UNDEFINE]
            return steps, (False, False, False, None)
        if not exists:
            if wanted_path is None:
                raise OperationFailed('Failed to create pool %s: path is required to create a pool' % name)
            if self.client.is_local and os.path.lexists(wanted_path) and not os.path.isdir(wanted_path):
                raise OperationFailed('Failed to create pool %s: its path %s exists and is not a directory'
                                      % (name, wanted_path))
            steps = [DEFINE, BUILD]
        elif wanted_path is not None and wanted_path != path:
            raise OperationFailed('Failed to converge pool %s: it exists with path %s, not %s; a pool\'s path cannot '
                                  'be changed, remove the pool first' % (name, path, wanted_path))
        will_be_active = active
        if state == 'active' and not active:
            steps.append(START)
            will_be_active = True
        elif state == 'inactive' and active:
            steps.append(STOP)
            will_be_active = False
        will_autostart = autostart if self.params['autostart'] is None else self.params['autostart']
        if will_autostart != autostart:
            steps.append(SET_AUTOSTART)
        return steps, (True, will_be_active, will_autostart, path or wanted_path)

    def _perform(self, step):
        client, name = self.client, self.name
        if step == DEFINE:
            self.pool = client.define_pool(name, _pool_xml(name, self.wanted_path))
            return
        what, operation, args = {
            BUILD: ('build', self.pool.build, (0,)),
            START: ('start', self.pool.create, (0,)),
            STOP: ('stop', self.pool.destroy, ()),
            SET_AUTOSTART: ('set autostart of', self.pool.setAutostart, (int(bool(self.params['autostart'])),)),
            UNDEFINE: ('undefine', self.pool.undefine, ()),
        }[step]
        client.call('%s pool %s' % (what, name), operation, *args)

    def _undefine_after_failure(self, exc):
        """A pool this run defined and could not build or start is undefined
        again, so that a failed run leaves nothing behind."""
        pool, what = self.pool, 'undefine pool %s again' % self.name
        try:
            if self.client.call(what, pool.isActive):
                self.client.call(what, pool.destroy)
            self.client.call(what, pool.undefine)
        except OperationFailed as error:
            exc.args = ('%s (the pool this run defined is left defined: %s)' % (exc, error),)
            return
        del self.changes.actions[:]
        exc.args = ('%s (the pool this run defined was undefined again)' % exc,)
