# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Converge a volume: create (empty, overlay, clone, upload), resize,
download, wipe and delete it.  Each run observes what libvirt holds, plans
the actions, builds the result and diff from the plan, then carries the
actions out through `Changes` (which skips them in check mode), so check mode
predicts the real run.  Everything that can be refused (bad names, sizes,
missing sources, volumes in use) is refused while planning, before anything
is touched."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import uuid

from ansible_collections.lifecycle.libvirt.plugins.module_utils import _xml
from ansible_collections.lifecycle.libvirt.plugins.module_utils._changes import Changes, diff_entry
from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import OperationFailed, libvirt
from ansible_collections.lifecycle.libvirt.plugins.module_utils._interrupt import interruptible
from ansible_collections.lifecycle.libvirt.plugins.module_utils._sizes import human_size
from ansible_collections.lifecycle.libvirt.plugins.module_utils._storage import (
    VolumeFacts, check_name, lookup_pool, mode_param, mode_text, pool_path, refresh, refresh_after_change, size_param)
from ansible_collections.lifecycle.libvirt.plugins.module_utils._streams import (
    delete_quietly, download_file, file_matches_volume, file_sha256, partial_prefix, refuse_download_target,
    remove_stale_downloads, upload_file, volume_sha256)
from ansible_collections.lifecycle.libvirt.plugins.module_utils._usage import refuse_if_used, running_users, volume_users
from ansible_collections.lifecycle.libvirt.plugins.module_utils._wipe import WIPE, WIPE_ALGORITHMS, while_busy, wipe_through_libvirt

VOLUME_FORMATS = ('raw', 'qcow2')

DEFAULT_MODE = '0600'
# qemu-img keeps qcow2 capacities in whole sectors.
QCOW2_SECTOR = 512

VOLUME_ARGUMENT_SPEC = dict(
    pool=dict(type='str', default='default'),
    name=dict(type='str', required=True),
    state=dict(type='str', default='present', choices=['present', 'absent']),
    capacity=dict(type='raw'),
    allocation=dict(type='raw'),
    format=dict(type='str', choices=list(VOLUME_FORMATS)),
    mode=dict(type='raw'),
    backing_volume=dict(type='str'),
    clone_from=dict(type='str'),
    source_pool=dict(type='str'),
    content_from=dict(type='path'),
    download_to=dict(type='path'),
    allow_shrink=dict(type='bool', default=False),
    force=dict(type='bool', default=False),
    allowed_users=dict(type='list', elements='str', default=[]),
    wipe=dict(type='str', choices=list(WIPE_ALGORITHMS)),
)
VOLUME_MUTUALLY_EXCLUSIVE = [('backing_volume', 'clone_from', 'content_from')]

# Steps (the names users see in `actions`); WIPE comes from _wipe.
CREATE = 'create'
CREATE_OVERLAY = 'create_overlay'
CLONE = 'clone'
UPLOAD = 'upload'
RESIZE = 'resize'
DOWNLOAD = 'download'
DELETE = 'delete'


class VolumeSpec:
    """The declared volume, validated before anything is looked up."""

    def __init__(self, params):
        self.pool = check_name(params['pool'], 'pool name')
        self.name = check_name(params['name'], 'volume name')
        self.state = params['state']
        self.capacity = size_param(params, 'capacity')
        self.allocation = size_param(params, 'allocation')
        self.format = params['format']
        self.mode = mode_param(params['mode'])
        self.backing_volume = check_name(params['backing_volume'], 'backing_volume')
        self.clone_from = check_name(params['clone_from'], 'clone_from')
        self.source_pool = check_name(params['source_pool'], 'source_pool') or self.pool
        self.source_pool_given = params['source_pool'] is not None
        self.content_from = params['content_from']
        # Written where a symlink points, not over the symlink.
        self.download_to = os.path.realpath(params['download_to']) if params['download_to'] else None
        self.allow_shrink = params['allow_shrink']
        self.force = params['force']
        self.allowed_users = params['allowed_users'] or []
        self.wipe = params['wipe']
        self._check_combinations()

    def _check_combinations(self):
        if self.state == 'absent':
            extra = [key for key in ('capacity', 'allocation', 'format', 'mode', 'backing_volume', 'clone_from',
                                     'content_from', 'download_to') if getattr(self, key) is not None]
            if extra:
                raise OperationFailed('Invalid options: %s cannot be used with state=absent' % ', '.join(extra))
        elif self.wipe is not None:
            raise OperationFailed('Invalid options: wipe is only used with state=absent (use lifecycle.libvirt.wipe '
                                  'to wipe a volume and keep it)')
        elif self.allowed_users:
            raise OperationFailed('Invalid options: allowed_users is only used with state=absent')
        if self.backing_volume is not None and self.format == 'raw':
            raise OperationFailed('Invalid options: a backing_volume overlay is qcow2, not raw')
        if self.allocation is not None and self.capacity is not None and self.allocation > self.capacity:
            raise OperationFailed('Invalid options: allocation (%d) is larger than capacity (%d)'
                                  % (self.allocation, self.capacity))
        if self.source_pool_given and self.backing_volume is None and self.clone_from is None:
            raise OperationFailed('Invalid options: source_pool only applies to backing_volume or clone_from')


class VolumeConvergence:
    """Observe the volume, plan the steps, the result and the diff, carry the steps out."""

    def __init__(self, client, spec, check_mode):
        self.client = client
        self.spec = spec
        self.changes = Changes(check_mode)
        self.pool = lookup_pool(client, spec.pool)
        refresh(self.pool)
        self.volume = client.volume(self.pool, spec.name)
        self.facts = VolumeFacts(client, self.volume) if self.volume is not None else None
        self.label = 'volume %s/%s' % (spec.pool, spec.name)
        self.warnings = []
        self.predicted = None  # the facts the volume will have, once planned
        self.source = None  # the volume an overlay or clone is made of

    # planning -----------------------------------------------------------------
    def _source(self, name):
        source_pool = lookup_pool(self.client, self.spec.source_pool)
        volume = self.client.volume(source_pool, name)
        if volume is None:
            raise OperationFailed('Failed to create %s: source volume %s does not exist in pool %s'
                                  % (self.label, name, self.spec.source_pool))
        return volume, VolumeFacts(self.client, volume)

    def _plan_create(self):
        """The actions and the predicted facts of a new volume."""
        spec = self.spec
        fmt, capacity, backing, source = spec.format, spec.capacity, None, None
        if spec.backing_volume is not None:
            source, facts = self._source(spec.backing_volume)
            fmt, backing = 'qcow2', facts.path
            self._refuse_smaller_than(facts, 'backing_volume', 'an overlay smaller than its backing image '
                                      'would cut off the end of the disk the guest sees')
            capacity = capacity if capacity is not None else facts.capacity
            actions = [CREATE_OVERLAY]
        elif spec.clone_from is not None:
            source, facts = self._source(spec.clone_from)
            fmt = fmt or facts.format
            # libvirt ignores a smaller capacity and copies the whole source,
            # which the next run would then refuse to shrink.
            self._refuse_smaller_than(facts, 'clone_from', 'a clone holds the whole source; shrink it '
                                      'afterwards with allow_shrink if you mean to cut data off')
            capacity = capacity if capacity is not None else facts.capacity
            actions = [CLONE]
        elif spec.content_from is not None:
            if not os.path.isfile(spec.content_from) or not os.access(spec.content_from, os.R_OK):
                raise OperationFailed('Failed to create %s: content_from %s is not a readable file'
                                      % (self.label, spec.content_from))
            size = os.path.getsize(spec.content_from)
            fmt = fmt or 'raw'
            if fmt == 'raw' and capacity is not None and capacity < size:
                raise OperationFailed('Failed to create %s: capacity %d is smaller than content_from (%d bytes)'
                                      % (self.label, capacity, size))
            capacity = capacity if capacity is not None else size
            actions = [UPLOAD]
        else:
            if capacity is None:
                raise OperationFailed('Failed to create %s: capacity is required to create a volume' % self.label)
            actions = [CREATE]
        fmt = fmt or 'raw'
        capacity = _rounded(capacity, fmt)
        _refuse_empty_qcow2(capacity, fmt, self.label)
        directory = pool_path(self.client, self.pool)[0]
        path = os.path.join(directory, self.spec.name) if directory else None
        mode = spec.mode if spec.mode is not None else int(DEFAULT_MODE, 8)
        predicted = dict(path=path, key=path, capacity=capacity, allocation=self.spec.allocation or 0,
                         format=fmt, backing=backing, mode=mode_text(mode))
        return actions, predicted, source

    def _refuse_smaller_than(self, source_facts, option, why):
        capacity = self.spec.capacity
        if capacity is not None and capacity < source_facts.capacity:
            source = '%s %s (%s)' % (option, getattr(self.spec, option), human_size(source_facts.capacity))
            raise OperationFailed('Failed to create %s: capacity %s is smaller than %s; %s. Omit capacity or give at '
                                  'least %d' % (self.label, human_size(capacity), source, why, source_facts.capacity))

    def _plan_existing(self):
        spec, facts = self.spec, self.facts
        if spec.format is not None and spec.format != facts.format:
            raise OperationFailed('Failed to converge %s: it exists with format %s, not %s; a volume\'s format '
                                  'cannot be converted in place' % (self.label, facts.format, spec.format))
        if spec.backing_volume is not None:
            wanted = self._source(spec.backing_volume)[1].path
            if facts.backing is None or os.path.normpath(facts.backing) != os.path.normpath(wanted):
                raise OperationFailed('Failed to converge %s: it exists with backing %s, not %s'
                                      % (self.label, facts.backing or 'none', wanted))
        if spec.mode is not None and facts.mode is not None and spec.mode != facts.mode:
            raise OperationFailed('Failed to converge %s: its mode is %s, not %s; libvirt cannot change the '
                                  'permissions of an existing volume' % (self.label, mode_text(facts.mode),
                                                                         mode_text(spec.mode)))
        predicted = facts.result()
        actions = []
        if spec.capacity is not None:
            wanted = _rounded(spec.capacity, facts.format)
            _refuse_empty_qcow2(wanted, facts.format, self.label)
            if wanted != facts.capacity:
                self._check_resize(wanted)
                actions.append(RESIZE)
                predicted['capacity'] = wanted
        return actions, predicted

    def _check_resize(self, wanted):
        facts = self.facts
        if wanted < facts.capacity and not self.spec.allow_shrink:
            raise OperationFailed('Failed to resize %s: shrinking it from %s to %s loses the data beyond the new end; '
                                  'set allow_shrink=true to do it' % (self.label, human_size(facts.capacity),
                                                                      human_size(wanted)))
        running = running_users(volume_users(self.client, facts.path, facts.key))
        if running:
            raise OperationFailed('Failed to resize %s: running domain(s) %s use it; resize it inside the domain '
                                  '(virsh blockresize) or stop them first' % (self.label, ', '.join(running)))

    def _plan_download(self, volume_changes):
        target = self.spec.download_to
        if target is None:
            return []
        refuse_download_target(self.client, target, self.label)
        if volume_changes or not file_matches_volume(self.client, self.volume, self.facts, target):
            return [DOWNLOAD]
        return []

    # doing --------------------------------------------------------------------
    def _volume_xml(self, predicted, name=None):
        volume = _xml.etree.Element('volume')
        _xml.etree.SubElement(volume, 'name').text = name or self.spec.name
        _xml.etree.SubElement(volume, 'capacity', unit='bytes').text = str(predicted['capacity'])
        _xml.etree.SubElement(volume, 'allocation', unit='bytes').text = str(predicted['allocation'])
        target = _xml.etree.SubElement(volume, 'target')
        _xml.etree.SubElement(target, 'format', type=predicted['format'])
        permissions = _xml.etree.SubElement(target, 'permissions')
        _xml.etree.SubElement(permissions, 'mode').text = predicted['mode']
        if predicted['backing'] is not None:
            backing = _xml.etree.SubElement(volume, 'backingStore')
            _xml.etree.SubElement(backing, 'path').text = predicted['backing']
            _xml.etree.SubElement(backing, 'format', type=self._backing_format())
        return _xml.to_text(volume)

    def _backing_format(self):
        return self._source(self.spec.backing_volume)[1].format or 'raw'

    def _perform(self, step):
        {CREATE: self._create, CREATE_OVERLAY: self._create, CLONE: self._clone, UPLOAD: self._upload,
         RESIZE: self._resize, DOWNLOAD: self._download, WIPE: self._wipe, DELETE: self._delete}[step]()

    def _create(self):
        self.volume = self.client.call('create %s' % self.label, self.pool.createXML,
                                       self._volume_xml(self.predicted), 0)

    def _clone(self):
        self.volume = self.client.call('clone %s into %s' % (self.spec.clone_from, self.label),
                                       self.pool.createXMLFrom, self._volume_xml(self.predicted), self.source, 0)

    def _resize(self):
        capacity = self.predicted['capacity']
        flags = libvirt.VIR_STORAGE_VOL_RESIZE_SHRINK if capacity < self.facts.capacity else 0
        self.client.call('resize %s' % self.label, self.volume.resize, capacity, flags)

    def _download(self):
        download_file(self.client, self.volume, self.spec.download_to)

    def _wipe(self):
        self.warnings.extend(wipe_through_libvirt(self.volume, self.label, self.spec.wipe))

    def _delete(self):
        self.warnings.extend(while_busy('delete %s' % self.label, self.volume.delete, 0))

    def _upload(self):
        """Upload into a temporary volume, read it back, and only then put
        it under its name, so that an interrupted or failed upload (disk
        full, SIGTERM, a dropped connection, a killed daemon) never leaves a
        volume with part of the content under the name: the next run finds
        no volume and uploads again (and removes the leftover)."""
        client, spec, label, predicted = self.client, self.spec, self.label, self.predicted
        temporary_name = '%s%s' % (partial_prefix(spec.name), uuid.uuid4().hex[:8])
        temporary = client.call('create a temporary volume for %s' % label, self.pool.createXML,
                                self._volume_xml(predicted, temporary_name), 0)
        try:
            size, sent = upload_file(client, temporary, spec.content_from)
            read_size, stored = volume_sha256(client, temporary, size)
            if (read_size, stored) != (size, sent):
                raise OperationFailed('Failed to upload %s to %s: the content read back (%d bytes, sha256 %s) is not '
                                      'what was sent (%d bytes, sha256 %s)'
                                      % (spec.content_from, label, read_size, stored, size, sent))
            self.volume = self._publish(temporary, predicted)
        except BaseException:
            delete_quietly(temporary)
            raise

    def _publish(self, temporary, predicted):
        """Put the verified temporary volume under its name.

        libvirt cannot rename a volume.  Where the module sees the pool's
        directory as libvirtd does (the temporary volume's random name is
        there) and the pool is a directory, a hard link gives the file its
        name in one atomic step that never replaces an existing file (link(2)
        fails when the name exists), the temporary name is unlinked and the
        pool re-read; a run killed in between leaves the complete volume plus
        a leftover the next run removes.  Elsewhere libvirt copies it
        (createXMLFrom) and the temporary volume is deleted: libvirt removes
        a copy that fails, but a daemon killed during that copy can leave a
        partial volume under the name."""
        client, label = self.client, self.label
        directory, pool_type = pool_path(client, self.pool)
        source = temporary.path()
        if pool_type in ('dir', 'fs', 'netfs') and client.is_local and os.path.isfile(source):
            final = os.path.join(directory, self.spec.name)
            try:
                os.link(source, final)
                os.unlink(source)
            except OSError as exc:
                raise OperationFailed('Failed to put the uploaded content under %s: %s' % (label, exc))
            refresh_after_change(client, self.pool)
            return client.call('look up %s' % label, self.pool.storageVolLookupByName, self.spec.name)
        volume = client.call('copy the uploaded content into %s' % label, self.pool.createXMLFrom,
                             self._volume_xml(predicted), temporary, 0)
        delete_quietly(temporary)
        return volume

    def _leftover_volumes(self):
        """Temporary volumes of earlier uploads to this name: this run holds
        the volume's lock, so they are what killed runs left."""
        prefix = partial_prefix(self.spec.name)
        return [volume for volume in self.client.call('list volumes of pool %s' % self.spec.pool,
                                                      self.pool.listAllVolumes, 0)
                if volume.name().startswith(prefix)]

    def _upload_again(self, leftovers):
        """Whether the volume is to be deleted and its content uploaded
        again (a hook: the seed converger replaces a changed seed)."""
        if not self._interrupted_upload(leftovers):
            return False
        self.warnings.append('%s does not hold content_from and an interrupted upload left a temporary volume: '
                             'uploading it again' % self.label)
        return True

    def _interrupted_upload(self, leftovers):
        """Whether the volume may be what an interrupted upload left: a
        leftover of an upload to this name is there and the volume does not
        hold content_from.  (Where libvirt copies the verified content into
        place, a daemon killed during that copy leaves such a volume.)"""
        content = self.spec.content_from
        if not leftovers or self.facts is None or content is None or not os.path.isfile(content):
            return False
        size, wanted = file_sha256(content)
        return self.facts.physical < size or volume_sha256(self.client, self.volume, size) != (size, wanted)

    def remove_leftovers(self, leftovers):
        """Delete the temporary volumes and files of earlier, killed runs."""
        removed = []
        for volume in leftovers:
            removed.append('volume %s/%s' % (self.spec.pool, volume.name()))
            self.client.call('delete the leftover volume %s' % volume.name(), volume.delete, 0)
        if self.spec.download_to is not None and os.path.isdir(os.path.dirname(self.spec.download_to)):
            removed.extend(remove_stale_downloads(self.spec.download_to))
        if removed:
            self.warnings.append('Removed what interrupted earlier runs left: %s' % ', '.join(removed))

    def run(self):
        spec = self.spec
        leftovers = self._leftover_volumes()
        redo = spec.state == 'present' and self._upload_again(leftovers)
        if not self.changes.check_mode:
            self.remove_leftovers(leftovers)
        if spec.state == 'absent':
            actions, predicted = [], None
            if self.facts is not None:
                refuse_if_used(self.client, self.facts, 'delete %s' % self.label, spec.force, spec.allowed_users)
                actions = ([WIPE] if spec.wipe else []) + [DELETE]
        elif redo:
            # Only a running domain keeps it: any other user refers to content that is not complete.
            refuse_if_used(self.client, self.facts, 'upload %s again' % self.label, True)
            actions, predicted, self.source = self._plan_create()
            actions = [DELETE] + actions
        elif self.facts is None:
            actions, predicted, self.source = self._plan_create()
        else:
            actions, predicted = self._plan_existing()
        if spec.state == 'present':
            actions = actions + self._plan_download(bool(actions))
        diff = self._diff(predicted, actions)
        result = dict(name=spec.name, pool=spec.pool, state=spec.state, actions=self.changes.actions, diff=diff,
                      warnings=self.warnings)
        self.predicted = predicted
        self.changes.carry_out(actions, self._perform, result)
        if spec.state == 'present' and not self.changes.check_mode:
            self.volume = self.client.volume(self.pool, spec.name)
            predicted = VolumeFacts(self.client, self.volume).result()
        result.update(predicted or _absent_result())
        return result

    def _diff(self, predicted, actions):
        def view(facts):
            if facts is None:
                return [('state', 'absent')]
            return [('state', 'present'), ('format', facts['format']),
                    ('capacity', '%d (%s)' % (facts['capacity'], human_size(facts['capacity']))),
                    ('backing', facts['backing']), ('mode', facts['mode']), ('path', facts['path'])]

        before = view(self.facts.result() if self.facts is not None else None)
        after = view(predicted)
        if self.spec.wipe and WIPE in actions:
            after.append(('wiped with', self.spec.wipe))
        diff = [diff_entry(self.label, before, after)]
        if DOWNLOAD in actions:
            target = self.spec.download_to
            before = 'differs from %s' % self.label if os.path.exists(target) else 'absent'
            diff.append(diff_entry('file %s' % target, [('content', before)],
                                   [('content', 'copy of %s' % self.label)]))
        return diff


def _rounded(capacity, fmt):
    if fmt == 'qcow2' and capacity % QCOW2_SECTOR:
        return capacity + QCOW2_SECTOR - capacity % QCOW2_SECTOR
    return capacity


def _refuse_empty_qcow2(capacity, fmt, label):
    # libvirt reports a qcow2 image of virtual size 0 with its file size as
    # capacity, so such a volume would never converge.
    if fmt == 'qcow2' and capacity == 0:
        raise OperationFailed('Failed to converge %s: a qcow2 volume of capacity 0 holds nothing and libvirt reports '
                              'its header size as its capacity; give a capacity above 0' % label)


def _absent_result():
    return dict(path=None, key=None, capacity=None, allocation=None, format=None, backing=None, mode=None)


def volume_label(values):
    """The volume of a batch item, pool/name (None while it names none)."""
    return '%s/%s' % (values['pool'], values['name']) if values['name'] is not None else None


def converge_volume(client, params, check_mode):
    return converge_volume_spec(client, VolumeSpec(params), check_mode)


def converge_volume_spec(client, spec, check_mode):
    # One run at a time per volume (two playbooks, two AWX jobs): the second
    # waits and then finds the volume as the first left it.
    with interruptible(), client.exclusive('volume', '%s/%s' % (spec.pool, spec.name)):
        return VolumeConvergence(client, spec, check_mode).run()
