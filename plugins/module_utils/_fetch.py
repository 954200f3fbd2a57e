# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A volume's content from an http(s) URL, verified by its checksum.

The image is streamed to a private temporary file where the module runs,
hashed on the way, and only when its sha256 is the declared one handed to
the storage code's upload path (a temporary volume, read back, then put
under its name).  A wrong checksum, an unreachable URL or a download cut
short therefore never leaves a volume - nor the temporary file - behind.

An existing volume is read back through libvirt and hashed: when it holds
the declared content nothing is downloaded (`changed: false`); when it
holds something else it is refused, never overwritten - it may be a disk
a guest wrote to.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import re
import tempfile

from ansible.module_utils.six.moves.urllib.parse import urlsplit
from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import OperationFailed
from ansible_collections.lifecycle.libvirt.plugins.module_utils._interrupt import interruptible
from ansible_collections.lifecycle.libvirt.plugins.module_utils._streams import STREAM_CHUNK, volume_sha256
from ansible_collections.lifecycle.libvirt.plugins.module_utils._volume import VolumeConvergence, VolumeSpec

URL_TIMEOUT_SECONDS = 60
_CHECKSUM = re.compile(r'^sha256:([0-9a-fA-F]{64})$')

# Options of `volume` that make the content some other way.
_OTHER_CONTENT = ('backing_volume', 'clone_from', 'content_from', 'cloud_init')

URL_ARGUMENT_SPEC = dict(
    url=dict(type='str'),
    checksum=dict(type='str'),
)


def parse_checksum(checksum):
    """The hex sha256 of ``sha256:<64 hex digits>``; OperationFailed otherwise."""
    match = _CHECKSUM.match(checksum or '')
    if match is None:
        raise OperationFailed('checksum must be sha256: followed by 64 hexadecimal digits, not %r' % checksum)
    return match.group(1).lower()


def check_url(url):
    parts = urlsplit(url)
    if parts.scheme not in ('http', 'https') or not parts.hostname:
        raise OperationFailed('url must be an http:// or https:// URL, not %r' % url)


def download(url, target, wanted_sha256, timeout=URL_TIMEOUT_SECONDS):
    """Stream `url` into the open binary file `target`; return its size.
    Fails when the server sends less than it announced or the sha256 is
    not `wanted_sha256`."""
    # Imported here: it pulls in http.client, ssl and more (about 40 ms),
    # which the volume module's other tasks do not need.
    from ansible.module_utils.urls import open_url

    digest = hashlib.sha256()
    size = 0
    try:
        response = open_url(url, timeout=timeout, follow_redirects='safe')
        announced = response.headers.get('Content-Length')
        for piece in iter(lambda: response.read(STREAM_CHUNK), b''):
            digest.update(piece)
            target.write(piece)
            size += len(piece)
    except Exception as exc:  # urllib, http.client and socket errors all mean "not downloaded"
        raise OperationFailed('Failed to download %s: %s' % (url, _reason(exc, size)))
    if announced is not None and announced.isdigit() and int(announced) != size:
        raise OperationFailed('Failed to download %s: the connection closed after %d of %s bytes' % (url, size, announced))
    if digest.hexdigest() != wanted_sha256:
        raise OperationFailed('Failed to download %s: its sha256 is %s, not the checksum sha256:%s; nothing was '
                              'created' % (url, digest.hexdigest(), wanted_sha256))
    return size


def _reason(exc, size):
    reason = getattr(exc, 'reason', None) or exc
    text = str(reason) or type(exc).__name__
    return '%s (after %d bytes)' % (text, size) if size else text


def converge_url_volume(client, params, check_mode):
    """Make the volume hold the image at `params['url']` with `params['checksum']`."""
    given = [option for option in _OTHER_CONTENT if params.get(option) is not None]
    if given:
        raise OperationFailed('url makes the volume\'s content: it cannot be used with %s' % ', '.join(given))
    if params['state'] != 'present':
        raise OperationFailed('url is only used with state=present')
    check_url(params['url'])
    wanted = parse_checksum(params['checksum'])
    with interruptible(), client.exclusive('volume', '%s/%s' % (params['pool'], params['name'])):
        spec = VolumeSpec(dict(params, content_from=None))
        existing = VolumeConvergence(client, spec, check_mode)
        if existing.facts is not None:
            return _check_existing(client, existing, params, wanted)
        # Also in check mode: only the download says whether the URL
        # answers, the checksum matches and how large the volume will be.
        handle, path = tempfile.mkstemp(prefix='lifecycle-libvirt-url-')
        try:
            with os.fdopen(handle, 'wb') as target:
                download(params['url'], target, wanted)
            spec = VolumeSpec(dict(params, content_from=path))
            result = VolumeConvergence(client, spec, check_mode).run()
        finally:
            os.unlink(path)
    result.update(url=params['url'], downloaded=True)
    return result


def _check_existing(client, converger, params, wanted):
    """The existing volume holds the image (no change: the options the
    volume takes otherwise - capacity, mode - still converge), or is refused."""
    facts = converger.facts
    size, found = volume_sha256(client, converger.volume, facts.physical)
    if found != wanted:
        raise OperationFailed('Failed to converge %s: it exists and does not hold the content of %s (its first %d '
                              'bytes have sha256 %s); it is never overwritten - delete it or choose another name'
                              % (converger.label, params['url'], size, found))
    result = converger.run()
    result.update(url=params['url'], downloaded=False)
    return result
