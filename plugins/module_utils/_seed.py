# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloud-init NoCloud seed volumes.

The seed is an ISO 9660 image labelled ``cidata`` holding ``meta-data``,
``user-data`` and optionally ``network-config``, built where the module
runs with pycdlib (pure Python) and uploaded through libvirt's stream API
by the storage code's upload path (a temporary volume, read back, then put
under its name), so it works on a remote hypervisor too.

An ISO's bytes hold the time it was made, so two builds of the same content
differ: whether the volume holds the declared seed is decided by reading it
back through libvirt and comparing the files in it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import io
import json
import os
import shutil
import subprocess
import tempfile

from ansible.module_utils.six import string_types
from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import OperationFailed
from ansible_collections.lifecycle.libvirt.plugins.module_utils._interrupt import interruptible
from ansible_collections.lifecycle.libvirt.plugins.module_utils._streams import read_volume
from ansible_collections.lifecycle.libvirt.plugins.module_utils._volume import DELETE, VolumeConvergence, VolumeSpec


VOLUME_LABEL = 'cidata'
CLOUD_CONFIG_HEADER = '#cloud-config'
# A seed is a few KiB; a volume much larger than this is not one.
MAX_SEED_BYTES = 16 * 1024 * 1024
SCHEMA_TIMEOUT_SECONDS = 120

CLOUD_INIT_SPEC = dict(type='dict', options=dict(
    user_data=dict(type='raw'),
    meta_data=dict(type='raw'),
    network_config=dict(type='raw'),
))

# Options of `volume` that make the content some other way.
# (libvirt reports a directory pool's ISO file as format iso, elsewhere raw:
# the format is libvirt's to say.)
_OTHER_CONTENT = ('capacity', 'allocation', 'format', 'backing_volume', 'clone_from', 'content_from', 'download_to',
                  'url')


def _document(value, what, header=None):
    """A dict (rendered as JSON - a subset of YAML that needs no YAML
    library where the module runs; keys sorted, so the same dict always
    gives the same bytes) or text, as bytes."""
    if isinstance(value, dict):
        text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + '\n'
        return ((header + '\n' + text) if header else text).encode('utf-8')
    if isinstance(value, string_types):
        return value.encode('utf-8')
    raise OperationFailed('cloud_init.%s must be a dict or text, not %s' % (what, type(value).__name__))


def seed_files(cloud_init, volume_name):
    """The files of the seed, by name, as bytes.

    Without an ``instance-id`` in meta_data one is made from the volume's
    name and the content, so that cloud-init sees new content as a new
    instance and applies it."""
    if not cloud_init or cloud_init.get('user_data') is None:
        raise OperationFailed('cloud_init.user_data is required (a dict, rendered as #cloud-config, or text)')
    user_data = _document(cloud_init['user_data'], 'user_data', CLOUD_CONFIG_HEADER)
    files = {'user-data': user_data}
    if cloud_init.get('network_config') is not None:
        files['network-config'] = _document(cloud_init['network_config'], 'network_config')
    meta_data = cloud_init.get('meta_data')
    if meta_data is None:
        meta_data = {}
    if isinstance(meta_data, dict) and 'instance-id' not in meta_data:
        digest = hashlib.sha256()
        for name in sorted(files):
            digest.update(name.encode('utf-8') + b'\0' + files[name] + b'\0')
        digest.update(json.dumps(meta_data, sort_keys=True).encode('utf-8'))
        meta_data = dict(meta_data, **{'instance-id': '%s-%s' % (volume_name, digest.hexdigest()[:12])})
    files['meta-data'] = _document(meta_data, 'meta_data')
    return files


def _iso_name(name):
    """The ISO 9660 level-1 name of a seed file (``user-data`` -> ``/USERDATA.;1``);
    cloud-init reads the Rock Ridge and Joliet names."""
    return '/%s.;1' % name.replace('-', '').upper()[:8]


def _pycdlib():
    """pycdlib, imported when a seed is built or read: the volume module's
    other tasks never pay for importing it."""
    try:
        import pycdlib
    except ImportError:
        raise OperationFailed('cloud_init needs the Python library pycdlib where the module runs (pip install pycdlib)')
    return pycdlib


def build_iso(files):
    """The ISO image (bytes) labelled cidata holding `files`."""
    iso = _pycdlib().PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge='1.09', vol_ident=VOLUME_LABEL)
    for name in sorted(files):
        data = files[name]
        iso.add_fp(io.BytesIO(data), len(data), _iso_name(name), rr_name=name, joliet_path='/' + name)
    image = io.BytesIO()
    iso.write_fp(image)
    iso.close()
    return image.getvalue()


def read_iso(image):
    """The files (name -> bytes) of an ISO image and its label; None when
    it is not an ISO image."""
    pycdlib = _pycdlib()
    iso = pycdlib.PyCdlib()
    try:
        iso.open_fp(io.BytesIO(image))
    except pycdlib.pycdlibexception.PyCdlibException:
        return None
    try:
        label = iso.pvd.volume_identifier.decode('ascii', 'replace').strip()
        files = {}
        for path, _dirs, names in iso.walk(rr_path='/'):
            for name in names:
                data = io.BytesIO()
                iso.get_file_from_iso_fp(data, rr_path=os.path.join(path, name))
                files[name] = data.getvalue()
        return label, files
    finally:
        iso.close()


def volume_holds_seed(client, volume, files):
    """Whether `volume` is a cidata ISO holding exactly `files` (read back through libvirt)."""
    capacity = client.call('read volume %s' % volume.name(), volume.info)[1]
    if capacity > MAX_SEED_BYTES:
        return False
    content = bytearray()

    def data(offset, piece):
        content[offset:offset + len(piece)] = piece

    def hole(offset, length):
        content[offset:offset + length] = bytes(length)

    read_volume(client, volume, data, hole)
    found = read_iso(bytes(content))
    return found is not None and found == (VOLUME_LABEL, files)


def validate_user_data(user_data):
    """Check #cloud-config user-data with cloud-init's own schema check.

    Returns what was done, for the result; raises OperationFailed when the
    schema check refuses it."""
    if not user_data.startswith(CLOUD_CONFIG_HEADER.encode('ascii')):
        return 'not validated: user_data is not #cloud-config (cloud-init has no schema for other formats)'
    command = shutil.which('cloud-init')
    if command is None:
        return 'not validated: cloud-init is not installed where the module runs'
    handle, path = tempfile.mkstemp(prefix='lifecycle-libvirt-user-data-')
    try:
        with os.fdopen(handle, 'wb') as stream:
            stream.write(user_data)
        process = subprocess.run([command, 'schema', '--config-file', path], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, timeout=SCHEMA_TIMEOUT_SECONDS, check=False)
    finally:
        os.unlink(path)
    output = process.stdout.decode('utf-8', 'replace').replace(path, 'user_data').strip()
    if process.returncode != 0:
        raise OperationFailed('cloud_init.user_data is not valid #cloud-config (cloud-init schema): %s' % output)
    return 'validated with cloud-init schema'


class _SeedConvergence(VolumeConvergence):
    """The volume convergence, uploading the built ISO; an existing volume
    whose seed differs is deleted and uploaded again."""

    def __init__(self, client, spec, check_mode, files):
        self.files = files
        super(_SeedConvergence, self).__init__(client, spec, check_mode)

    def _upload_again(self, leftovers):
        return self.facts is not None and not volume_holds_seed(self.client, self.volume, self.files)


def converge_seed(client, params, check_mode):
    """Make the volume `params['name']` the NoCloud seed of `params['cloud_init']`."""
    _pycdlib()  # missing: fail before anything is looked at
    given = [option for option in _OTHER_CONTENT if params.get(option) is not None]
    if given:
        raise OperationFailed('cloud_init makes the volume\'s content: it cannot be used with %s' % ', '.join(given))
    if params['state'] != 'present':
        raise OperationFailed('cloud_init is only used with state=present')
    files = seed_files(params['cloud_init'], params['name'])
    validation = validate_user_data(files['user-data'])
    handle, path = tempfile.mkstemp(prefix='lifecycle-libvirt-seed-', suffix='.iso')
    try:
        with os.fdopen(handle, 'wb') as stream:
            stream.write(build_iso(files))
        spec = VolumeSpec(dict(params, content_from=path))
        with interruptible(), client.exclusive('volume', '%s/%s' % (spec.pool, spec.name)):
            result = _SeedConvergence(client, spec, check_mode, files).run()
    finally:
        os.unlink(path)
    replaced = DELETE in result['actions']
    result.update(cloud_init_validation=validation, reboot_required=replaced)
    if replaced:
        result['warnings'].append('the cloud-init seed %s/%s changed: cloud-init reads it at boot, so reboot the '
                                  'domains using it' % (params['pool'], params['name']))
    return result
