# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Storage pools and volumes: converge a pool, converge a volume, wipe one.

Each entry point observes what libvirt holds, plans the actions, builds the
result and diff from the plan, then carries the actions out through
`Changes` (which skips them in check mode), so check mode predicts the real
run.  Everything that can be refused (bad names, sizes, missing sources,
volumes in use) is refused while planning, before anything is touched.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import fcntl
import hashlib
import os
import re
import stat
import struct
import tempfile
import time
import uuid

from ansible.module_utils.six.moves.urllib.parse import urlparse

from ansible_collections.lifecycle.libvirt.plugins.module_utils import _xml
from ansible_collections.lifecycle.libvirt.plugins.module_utils._changes import Changes
from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import OperationFailed, libvirt
from ansible_collections.lifecycle.libvirt.plugins.module_utils._interrupt import (
    Interrupted, interruptible, run_blocking, signal_name)
from ansible_collections.lifecycle.libvirt.plugins.module_utils._sizes import SizeError, human_size, parse_size
from ansible_collections.lifecycle.libvirt.plugins.module_utils._wait import Stopwatch

POOL_STATES = ('present', 'absent', 'active', 'inactive')
VOLUME_FORMATS = ('raw', 'qcow2')
# libvirt's wipe patterns (virStorageVolWipeAlgorithm), by the names virsh uses.
WIPE_ALGORITHMS = ('zero', 'nnsa', 'dod', 'bsi', 'gutmann', 'schneier', 'pfitzner7', 'pfitzner33', 'random', 'trim')
DEFAULT_MODE = '0600'
# qemu-img keeps qcow2 capacities in whole sectors.
QCOW2_SECTOR = 512
STREAM_CHUNK = 256 * 1024
# Seconds between two tries of a call libvirt refuses while a job holds the volume or pool.
BUSY_POLL = 1.0

POOL_ARGUMENT_SPEC = dict(
    name=dict(type='str', required=True),
    path=dict(type='path'),
    state=dict(type='str', default='active', choices=list(POOL_STATES)),
    autostart=dict(type='bool'),
    force=dict(type='bool', default=False),
)

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

WIPE_ARGUMENT_SPEC = dict(
    pool=dict(type='str', default='default'),
    name=dict(type='str'),
    path=dict(type='path'),
    algorithm=dict(type='str', default='zero', choices=list(WIPE_ALGORITHMS)),
    force=dict(type='bool', default=False),
    allowed_users=dict(type='list', elements='str', default=[]),
    verify=dict(type='bool', default=False),
)

VOLUME_INFO_ARGUMENT_SPEC = dict(
    pool=dict(type='str', default='default'),
    name=dict(type='str'),
)


# Validation -------------------------------------------------------------------

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


def _mode_text(mode):
    return None if mode is None else '%04o' % mode


# Lookups and XML -------------------------------------------------------------

def refresh(pool):
    """Re-read the pool's directory so files made outside libvirt count.
    Best effort: libvirt refuses while a job (a wipe, an upload, a clone)
    runs in the pool, and the volumes it already knows are enough then."""
    try:
        pool.refresh(0)
    except libvirt.libvirtError:
        pass


def lookup_pool(client, name):
    pool = client.pool(name)
    if pool is None:
        raise OperationFailed('Failed to find storage pool %s: it does not exist' % name)
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
                    format=self.format, backing=self.backing, mode=_mode_text(self.mode))


def _bytes(element):
    if element is None:
        return None
    return _xml.scaled_bytes(element) if element.get('unit') else int(element.text)


def _pool_path(client, pool):
    root = _xml.parse_xml(client.call('read pool %s' % pool.name(), pool.XMLDesc, 0), 'pool XML')
    return root.findtext('target/path'), root.get('type')


# Who uses a volume -------------------------------------------------------------
#
# "Uses" is decided by identity, never by how a path is spelled: a path names
# a file by (st_dev, st_ino), a block or character device by its device
# number, and - when the module cannot see the hypervisor's files (a remote
# URI, or a file it cannot stat) - by the key of the volume libvirt's own
# storageVolLookupByPath finds there (libvirt resolves the path on the
# hypervisor).  Symlinked directories, bind mounts, hard links and `..` all
# lead to the same identity.  The spelled path counts as well, so a path that
# names nothing yet still matches itself.

# Deeper backing chains than this are treated as a loop (qemu stops far earlier).
MAX_CHAIN = 64
_QCOW2_MAGIC = b'QFI\xfb'


def is_local(client):
    """Whether the module runs on the hypervisor, so that its files are ours to stat."""
    uri = client.call('read the connection URI', client.conn.getURI)
    return not urlparse(uri).hostname


class Identities:
    """Identity tokens of paths on the hypervisor, cached for one scan."""

    def __init__(self, client):
        self.client = client
        self.local = is_local(client)
        self._cache = {}

    def of(self, path):
        # Never normalised before the look: "link/.." is not where the text says.
        if path not in self._cache:
            self._cache[path] = frozenset(self._tokens(path))
        return self._cache[path]

    def _tokens(self, path):
        yield ('path', os.path.normpath(path))
        if self.local:
            try:
                info = os.stat(path)
            except OSError:
                info = None
            if info is not None:
                if stat.S_ISBLK(info.st_mode):
                    yield ('block device', info.st_rdev)
                elif stat.S_ISCHR(info.st_mode):
                    yield ('character device', info.st_rdev)
                else:
                    yield ('inode', info.st_dev, info.st_ino)
                return
        key = self.volume_key(path)
        if key is not None:
            yield ('volume', key)

    def volume_key(self, path):
        try:
            return self.client.conn.storageVolLookupByPath(path).key()
        except libvirt.libvirtError:
            return None  # no pool holds it (or it went away): the other tokens decide

    def backing_of(self, path):
        """The path of the image `path` is an overlay of, or None.  Read from
        the qcow2 header when the file is ours to read (the way qemu finds it:
        a relative name is relative to the overlay's directory), else from the
        volume XML of the pool volume libvirt finds there."""
        if self.local:
            return _qcow2_backing(path)
        try:
            volume = self.client.conn.storageVolLookupByPath(path)
            return _xml.parse_xml(volume.XMLDesc(0), 'volume XML').findtext('backingStore/path')
        except libvirt.libvirtError:
            return None

    def chain(self, path):
        """`path` and every image below it, top first."""
        chain, seen = [], set()
        while path and len(chain) < MAX_CHAIN:
            tokens = self.of(path)
            if tokens & seen:
                break
            seen |= tokens
            chain.append(path)
            path = self.backing_of(path)
        return chain


def _qcow2_backing(path):
    try:
        with open(path, 'rb') as handle:
            header = handle.read(20)
            if len(header) < 20 or header[:4] != _QCOW2_MAGIC:
                return None
            offset, size = struct.unpack('>QI', header[8:20])
            if not offset or not size or size > 4096:
                return None
            handle.seek(offset)
            name = handle.read(size).decode('utf-8', 'replace')
    except (OSError, IOError):
        return None
    if name.startswith('json:') or '://' in name:
        return None  # a network or JSON description, not a file here
    return os.path.join(os.path.dirname(path), name)


def _source_path(client, element):
    """The file or device the <source> child of `element` names, if any."""
    source = element.find('source')
    if source is None:
        return None
    for attribute in ('file', 'dev'):
        if source.get(attribute):
            return source.get(attribute)
    if source.get('pool') and source.get('volume'):
        volume = client.volume(source.get('pool'), source.get('volume'))
        if volume is not None:
            return volume.path()
    return None


def _disk_references(client, disk, what):
    """(what, via, path) of a disk's source, the backingStore chain libvirt
    reports below it, and the target of a block copy (mirror)."""
    element, via = disk, what
    while element is not None:
        path = _source_path(client, element)
        if path:
            yield what, via, path
        element, via = element.find('backingStore'), 'backing chain of %s' % what
    mirror = disk.find('mirror')
    if mirror is not None:
        path = mirror.get('file') or _source_path(client, mirror)
        if path:
            yield what, 'mirror of %s' % what, path


def _domain_references(client, root, prefix=''):
    """(what, via, path) of everything a domain definition reads or writes on the host."""
    for disk in root.iter('disk'):
        target = disk.find('target')
        what = '%sdisk %s' % (prefix, target.get('dev') if target is not None else '?')
        yield from _disk_references(client, disk, what)
    for tag in ('kernel', 'initrd', 'dtb', 'loader', 'nvram'):
        for element in root.iter(tag):
            if element.text and element.text.strip().startswith('/'):
                yield prefix + tag, prefix + tag, element.text.strip()


class StorageUsage:
    """Every use of a file or device by libvirt's domains, their snapshots and
    the pool volumes, read once; `users(path)` answers by identity.

    Domains: every disk (and its whole backing chain) of the live and the
    inactive definition, plus kernel, initrd, loader and NVRAM files.
    Snapshots: the external files a snapshot recorded (disks/disk/source,
    memory) and the disks of the domain it saved, with their chains.
    Volumes: every image below a pool volume in its backing chain, and the
    volume's own file (another name of it - a hard link - is a user too)."""

    def __init__(self, client):
        self.client = client
        self.ids = Identities(client)
        self.claims = []
        for domain in client.domains():
            try:
                self._claim_domain(domain)
            except libvirt.libvirtError:
                continue  # it went away while we looked
        for pool in client.call('list storage pools', client.conn.listAllStoragePools,
                                libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE):
            try:
                volumes = pool.listAllVolumes(0)
            except libvirt.libvirtError:
                continue
            for volume in volumes:
                try:
                    self._claim_volume(pool.name(), volume)
                except libvirt.libvirtError:
                    continue

    def _claim(self, chain_top, user, first_via, chain_via, skip_top=False):
        """`user` uses `chain_top` (as `first_via`) and every image below it."""
        for index, path in enumerate(self.ids.chain(chain_top)):
            if index == 0 and skip_top:
                continue
            self.claims.append((self.ids.of(path), dict(user, via=first_via if index == 0 else chain_via,
                                                        path=path)))

    def _claim_domain(self, domain):
        name, running = domain.name(), bool(domain.isActive())
        documents = [domain.XMLDesc(0)]
        if running and domain.isPersistent():
            documents.append(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        user = dict(kind='domain', name=name, domain=name, running=running)
        for document in documents:
            for what, via, path in _domain_references(self.client, _xml.parse_xml(document, 'domain XML')):
                self._claim(path, user, via, 'backing chain of %s' % what)
        for snapshot in domain.listAllSnapshots(0):
            root = _xml.parse_xml(snapshot.getXMLDesc(0), 'snapshot XML')
            user = dict(kind='snapshot', name=snapshot.getName(), domain=name, running=False)
            for disk in root.findall('disks/disk'):
                for what, via, path in _disk_references(self.client, disk, 'external file of disk %s'
                                                        % disk.get('name')):
                    self._claim(path, user, via, 'backing chain of %s' % what)
            memory = root.find('memory')
            if memory is not None and memory.get('file'):
                self._claim(memory.get('file'), user, 'memory file', 'memory file')
            saved = root.find('domain')
            if saved is not None:
                for what, via, path in _domain_references(self.client, saved, 'saved '):
                    self._claim(path, user, via, 'backing chain of %s' % what)

    def _claim_volume(self, pool_name, volume):
        user = dict(kind='volume', name='%s/%s' % (pool_name, volume.name()), domain=None, running=False,
                    key=volume.key())
        path = volume.path()
        self.claims.append((self.ids.of(path) | {('volume', volume.key())}, dict(user, via='same file', path=path)))
        self._claim(path, user, None, 'backing chain', skip_top=True)

    def users(self, path, key=None):
        """Every user of the file or device at `path` (of the volume `key`,
        which is not its own user), each once."""
        tokens = self.ids.of(path) | ({('volume', key)} if key else set())
        found, seen = [], set()
        for claim, user in self.claims:
            if not claim & tokens or (key is not None and user.get('key') == key):
                continue
            identity = (user['kind'], user['name'], user['domain'], user['via'])
            if identity not in seen:
                seen.add(identity)
                found.append(dict((field, value) for field, value in user.items() if field != 'key'))
        return found


def volume_users(client, path, key=None):
    """Who uses the file or device at `path` (the volume `key`): a list of
    dicts with kind (domain, snapshot or volume), name, domain, running, via
    and path (as the user names it).  The one place that decides it."""
    return StorageUsage(client).users(path, key)


def _describe(user):
    if user['kind'] == 'domain':
        return 'domain %s (%s)' % (user['name'], user['via'])
    if user['kind'] == 'snapshot':
        return 'snapshot %s of domain %s (%s)' % (user['name'], user['domain'], user['via'])
    if user['via'] == 'same file':
        return 'volume %s (the same file under another name)' % user['name']
    return 'overlay volume %s' % user['name']


def running_users(users):
    return sorted(set(user['name'] for user in users if user['kind'] == 'domain' and user['running']))


def refuse_if_used(client, facts, what, force, allowed_users=()):
    """Refuse to destroy data a running domain uses; any other user only
    with force, or when it is a stopped domain (or a snapshot of one) named in
    `allowed_users`."""
    users = volume_users(client, facts.path, facts.key)
    running = running_users(users)
    if running:
        raise OperationFailed('Failed to %s: running domain(s) %s use it; stop them first (force and '
                              'allowed_users do not override this)' % (what, ', '.join(running)))
    if force:
        return
    blocking = [user for user in users if not (user['kind'] in ('domain', 'snapshot')
                                               and user['domain'] in allowed_users)]
    if blocking:
        raise OperationFailed('Failed to %s: it is used by %s; set force=true to do it anyway'
                              % (what, ', '.join(_describe(user) for user in blocking)))


# Streams ----------------------------------------------------------------------

@contextlib.contextmanager
def _stream(client, what, start, *args):
    """A libvirt stream that `start(stream, *args)` attached to a volume;
    any failure aborts it and reads "Failed to <what>: <why>"."""
    stream = client.call('open a stream to %s' % what, client.conn.newStream, 0)
    client.call(what, start, stream, *args)
    try:
        yield stream
    except BaseException as exc:
        try:
            stream.abort()
        except libvirt.libvirtError:
            pass
        if isinstance(exc, libvirt.libvirtError):
            raise OperationFailed('Failed to %s: %s' % (what, exc.get_error_message()))
        if isinstance(exc, EnvironmentError):
            raise OperationFailed('Failed to %s: %s' % (what, exc))
        raise


def read_volume(client, volume, on_data, on_hole, length=0):
    """Download the volume's content (its first `length` bytes; 0: all)
    through a sparse stream.

    `on_data(offset, data)` and `on_hole(offset, length)` see each piece in
    order; when `on_data` returns False the download stops.  Returns the
    bytes read (holes included) and whether it read to the end.
    """
    offset = 0
    with _stream(client, 'download volume %s' % volume.name(), volume.download, 0, length,
                 libvirt.VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM) as stream:
        while True:
            got = stream.recvFlags(STREAM_CHUNK, libvirt.VIR_STREAM_RECV_STOP_AT_HOLE)
            if isinstance(got, int):  # -3: a hole follows
                length = stream.recvHole(0)
                on_hole(offset, length)
                offset += length
                continue
            if not got:
                break
            if on_data(offset, got) is False:
                stream.abort()
                return offset, False
            offset += len(got)
        stream.finish()
    return offset, True


class ZeroCheck:
    """Reads a volume and finds its first non-zero byte, if any."""

    ZEROS = bytes(STREAM_CHUNK)

    def __init__(self, client, volume):
        self.first_nonzero = None
        self.checked, complete = read_volume(client, volume, self._data, lambda _offset, _length: None)
        self.all_zero = complete and self.first_nonzero is None

    def _data(self, offset, data):
        if data == self.ZEROS[:len(data)]:
            return True
        self.first_nonzero = offset + len(data) - len(data.lstrip(b'\0'))
        return False


def upload_file(client, volume, filename):
    """Send `filename` into the volume; returns its size and sha256."""
    size = os.path.getsize(filename)
    digest = hashlib.sha256()

    def piece(_stream, nbytes, source):
        data = source.read(nbytes)
        digest.update(data)
        return data

    with open(filename, 'rb') as handle:
        with _stream(client, 'upload %s to volume %s' % (filename, volume.name()), volume.upload, 0, size, 0) as stream:
            stream.sendAll(piece, handle)
            stream.finish()
    return size, digest.hexdigest()


def file_sha256(filename):
    """Size and sha256 of a file."""
    digest = hashlib.sha256()
    with open(filename, 'rb') as handle:
        for piece in iter(lambda: handle.read(STREAM_CHUNK), b''):
            digest.update(piece)
    return os.path.getsize(filename), digest.hexdigest()


def volume_sha256(client, volume, length):
    """sha256 of the volume's first `length` bytes, read back through libvirt."""
    digest = hashlib.sha256()

    def hole(_offset, hole_length):
        while hole_length:
            piece = min(hole_length, STREAM_CHUNK)
            digest.update(ZeroCheck.ZEROS[:piece])
            hole_length -= piece

    size, _complete = read_volume(client, volume, lambda _offset, data: digest.update(data), hole, length)
    return size, digest.hexdigest()


# download_to writes `.<name>.download-<random>` next to the target; the
# writer holds an flock on it, so a file of that name nobody holds is the
# leftover of a killed run.
DOWNLOAD_MARK = '.download-'


def _download_prefix(filename):
    return '.%s%s' % (os.path.basename(filename), DOWNLOAD_MARK)


def remove_stale_downloads(filename):
    """Delete the temporary files of earlier downloads to `filename` that no
    running download holds; returns their paths."""
    directory, prefix = os.path.dirname(filename), _download_prefix(filename)
    removed = []
    for entry in sorted(os.listdir(directory)):
        if not entry.startswith(prefix):
            continue
        path = os.path.join(directory, entry)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue  # a symlink, or gone already: not ours
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                continue
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (IOError, OSError):
            continue  # a download in progress holds it
        else:
            os.unlink(path)
            removed.append(path)
        finally:
            os.close(fd)
    return removed


def download_file(client, volume, filename):
    """Write the volume's content to `filename` (mode 0600, holes kept),
    replacing it only once the whole content has arrived.  The temporary
    file is removed on any failure, SIGTERM and SIGINT included (inside
    `interruptible()`)."""
    directory = os.path.dirname(filename)
    try:
        fd, temporary = tempfile.mkstemp(prefix=_download_prefix(filename), dir=directory)
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError as exc:
        raise OperationFailed('Failed to download volume %s to %s: %s' % (volume.name(), filename, exc))
    try:
        with os.fdopen(fd, 'wb') as handle:
            def data(offset, chunk):
                handle.seek(offset)
                handle.write(chunk)

            size, _complete = read_volume(client, volume, data, lambda _offset, _length: None)
            handle.truncate(size)
            handle.flush()
            os.fsync(handle.fileno())
            os.replace(temporary, filename)  # still holding the lock: no one takes it for a leftover
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def file_matches_volume(client, volume, facts, filename):
    """Whether `filename` already holds exactly the volume's content."""
    if not os.path.isfile(filename) or os.path.getsize(filename) != facts.physical:
        return False
    with open(filename, 'rb') as handle:
        def data(offset, chunk):
            handle.seek(offset)
            return handle.read(len(chunk)) == chunk

        def hole(offset, length):
            handle.seek(offset)
            remaining = length
            while remaining:
                piece = handle.read(min(remaining, STREAM_CHUNK))
                if not piece or piece.count(0) != len(piece):
                    raise _Differs()
                remaining -= len(piece)

        try:
            _size, complete = read_volume(client, volume, data, hole)
        except _Differs:
            return False
    return complete


class _Differs(Exception):
    pass


# Diffs ------------------------------------------------------------------------

def _summary(fields):
    return ''.join('%s: %s\n' % (key, 'none' if value is None else value) for key, value in fields)


def _entry(header, before, after):
    return dict(before_header=header, after_header=header, before=_summary(before), after=_summary(after))


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
    path = _pool_path(client, pool)[0] if exists else None
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

    diff = [_entry('pool %s' % name, _pool_view(exists, active, autostart, path), _pool_view(*after))]
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


# Volumes ----------------------------------------------------------------------

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


class VolumeConverger:
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
            actions = ['create overlay']
        elif spec.clone_from is not None:
            source, facts = self._source(spec.clone_from)
            fmt = fmt or facts.format
            # libvirt ignores a smaller capacity and copies the whole source,
            # which the next run would then refuse to shrink.
            self._refuse_smaller_than(facts, 'clone_from', 'a clone holds the whole source; shrink it '
                                      'afterwards with allow_shrink if you mean to cut data off')
            capacity = capacity if capacity is not None else facts.capacity
            actions = ['clone']
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
            actions = ['upload']
        else:
            if capacity is None:
                raise OperationFailed('Failed to create %s: capacity is required to create a volume' % self.label)
            actions = ['create']
        fmt = fmt or 'raw'
        capacity = _rounded(capacity, fmt)
        _refuse_empty_qcow2(capacity, fmt, self.label)
        pool_path = _pool_path(self.client, self.pool)[0]
        path = os.path.join(pool_path, self.spec.name) if pool_path else None
        predicted = dict(path=path, key=path, capacity=capacity, allocation=self.spec.allocation or 0,
                         format=fmt, backing=backing, mode=_mode_text(spec.mode if spec.mode is not None
                                                                      else int(DEFAULT_MODE, 8)))
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
                                  'permissions of an existing volume' % (self.label, _mode_text(facts.mode),
                                                                         _mode_text(spec.mode)))
        predicted = facts.result()
        actions = []
        if spec.capacity is not None:
            wanted = _rounded(spec.capacity, facts.format)
            _refuse_empty_qcow2(wanted, facts.format, self.label)
            if wanted != facts.capacity:
                self._check_resize(wanted)
                actions.append('resize')
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
            return ['download']
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

    def _perform(self, action, predicted, source):
        client, spec, label = self.client, self.spec, self.label
        if action in ('create', 'create overlay'):
            self.volume = client.call('create %s' % label, self.pool.createXML, self._volume_xml(predicted), 0)
        elif action == 'clone':
            self.volume = client.call('clone %s into %s' % (spec.clone_from, label), self.pool.createXMLFrom,
                                      self._volume_xml(predicted), source, 0)
        elif action == 'upload':
            self.volume = self._upload(predicted)
        elif action == 'resize':
            flags = libvirt.VIR_STORAGE_VOL_RESIZE_SHRINK if predicted['capacity'] < self.facts.capacity else 0
            client.call('resize %s' % label, self.volume.resize, predicted['capacity'], flags)
        elif action == 'download':
            download_file(client, self.volume, spec.download_to)
        elif action == 'wipe':
            self.warnings.extend(wipe_through_libvirt(self.volume, label, spec.wipe))
        elif action == 'delete':
            self.warnings.extend(while_busy('delete %s' % label, self.volume.delete, 0))

    def _upload(self, predicted):
        """Upload into a temporary volume, read it back, and only then put
        it under its name, so that an interrupted or failed upload (disk
        full, SIGTERM, a dropped connection, a killed daemon) never leaves a
        volume with part of the content under the name: the next run finds
        no volume and uploads again (and removes the leftover)."""
        client, spec, label = self.client, self.spec, self.label
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
            return self._publish(temporary, predicted)
        except BaseException:
            _delete_quietly(temporary)
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
        pool_path, pool_type = _pool_path(client, self.pool)
        source = temporary.path()
        if pool_type in ('dir', 'fs', 'netfs') and is_local(client) and os.path.isfile(source):
            final = os.path.join(pool_path, self.spec.name)
            try:
                os.link(source, final)
                os.unlink(source)
            except OSError as exc:
                raise OperationFailed('Failed to put the uploaded content under %s: %s' % (label, exc))
            refresh_after_change(client, self.pool)
            return client.call('look up %s' % label, self.pool.storageVolLookupByName, self.spec.name)
        volume = client.call('copy the uploaded content into %s' % label, self.pool.createXMLFrom,
                             self._volume_xml(predicted), temporary, 0)
        _delete_quietly(temporary)
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
        watch = Stopwatch()
        spec = self.spec
        source = None
        leftovers = self._leftover_volumes()
        redo = spec.state == 'present' and self._upload_again(leftovers)
        if not self.changes.check_mode:
            self.remove_leftovers(leftovers)
        if spec.state == 'absent':
            actions, predicted = [], None
            if self.facts is not None:
                refuse_if_used(self.client, self.facts, 'delete %s' % self.label, spec.force, spec.allowed_users)
                actions = (['wipe'] if spec.wipe else []) + ['delete']
        elif redo:
            # Only a running domain keeps it: any other user refers to content that is not complete.
            refuse_if_used(self.client, self.facts, 'upload %s again' % self.label, True)
            actions, predicted, source = self._plan_create()
            actions = ['delete'] + actions
        elif self.facts is None:
            actions, predicted, source = self._plan_create()
        else:
            actions, predicted = self._plan_existing()
        if spec.state == 'present':
            actions = actions + self._plan_download(bool(actions))
        diff = self._diff(predicted, actions)
        result = dict(name=spec.name, pool=spec.pool, state=spec.state, actions=self.changes.actions, diff=diff,
                      warnings=self.warnings)
        try:
            for action in actions:
                self.changes.apply(action, self._perform, action, predicted, source)
        except OperationFailed as exc:
            exc.result.update(result, changed=self.changes.changed or exc.result.get('changed', False),
                              duration=watch.rounded())
            raise
        if spec.state == 'present' and not self.changes.check_mode:
            self.volume = self.client.volume(self.pool, spec.name)
            predicted = VolumeFacts(self.client, self.volume).result()
        result.update(predicted or _absent_result(), changed=self.changes.changed, duration=watch.rounded())
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
        if self.spec.wipe and 'wipe' in actions:
            after.append(('wiped with', self.spec.wipe))
        diff = [_entry(self.label, before, after)]
        if 'download' in actions:
            target = self.spec.download_to
            diff.append(_entry('file %s' % target,
                               [('content', 'differs from %s' % self.label if os.path.exists(target) else 'absent')],
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


def converge_volume(client, params, check_mode):
    spec = VolumeSpec(params)
    # One run at a time per volume (two playbooks, two AWX jobs): the second
    # waits and then finds the volume as the first left it.
    with interruptible(), client.exclusive('volume', '%s/%s' % (spec.pool, spec.name)):
        return VolumeConverger(client, spec, check_mode).run()


def partial_prefix(name):
    """Temporary volumes of an upload are named `.<name>.partial-<random>`."""
    return '.%s.partial-' % name


def _delete_quietly(volume):
    try:
        volume.delete(0)
    except libvirt.libvirtError:
        pass  # gone already; a leftover is removed by the next run


def refresh_after_change(client, pool, timeout=300):
    """Re-read the pool after a file changed under libvirt, waiting while a
    job (a wipe, an upload) keeps libvirt from refreshing it."""
    watch = Stopwatch()
    while True:
        try:
            pool.refresh(0)
            return
        except libvirt.libvirtError as exc:
            if watch.elapsed > timeout:
                raise OperationFailed('Failed to re-read pool %s after changing it (run virsh pool-refresh %s): %s'
                                      % (pool.name(), pool.name(), exc.get_error_message()))
        time.sleep(BUSY_POLL)


def refuse_download_target(client, target, label):
    """download_to writes regular files of its own only."""
    try:
        info = os.stat(target)
    except OSError:
        info = None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise OperationFailed('Failed to download %s: download_to %s is a directory' % (label, target))
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise OperationFailed('Failed to download %s: download_to %s is not a regular file (a device node, FIFO or '
                              'socket); it is never replaced' % (label, target))
    if not os.path.isdir(os.path.dirname(target)):
        raise OperationFailed('Failed to download %s: the directory of download_to %s does not exist'
                              % (label, target))
    users = volume_users(client, target)
    if users:
        raise OperationFailed('Failed to download %s: download_to %s is storage libvirt uses (%s); it is never '
                              'overwritten' % (label, target, ', '.join(_describe(user) for user in users)))


# Wipe -------------------------------------------------------------------------

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
        except libvirt.libvirtError as exc:
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
        try:
            volume = client.conn.storageVolLookupByPath(params['path'])
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:
                raise OperationFailed('Failed to find a volume with path %s: libvirt knows no volume there'
                                      % params['path'])
            raise OperationFailed('Failed to look up volume %s: %s' % (params['path'], exc.get_error_message()))
        return volume, 'volume %s' % params['path']
    pool_name = check_name(params['pool'], 'pool name')
    name = check_name(params['name'], 'volume name')
    pool = lookup_pool(client, pool_name)
    refresh(pool)
    volume = client.volume(pool, name)
    if volume is None:
        raise OperationFailed('Failed to find volume %s in pool %s: it does not exist' % (name, pool_name))
    return volume, 'volume %s/%s' % (pool_name, name)


def wipe_volume(client, params, check_mode):
    """Wipe one volume; a zero-wipe of a volume that already reads as zeros
    changes nothing."""
    with interruptible():
        return _wipe_volume(client, params, check_mode)


def _wipe_volume(client, params, check_mode):
    watch = Stopwatch()
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
                  diff=[_entry(label, [('content', 'all zeros' if already_zero else 'data')],
                               [('content', 'all zeros' if algorithm == 'zero' else 'overwritten (%s)' % algorithm)])])
    try:
        if not already_zero:
            result['warnings'] = changes.apply('wipe', wipe_through_libvirt, volume, label, algorithm) or []
        verified, checked = already_zero is True, facts.physical if already_zero else 0
        if params['verify'] and not check_mode and not already_zero:
            check = ZeroCheck(client, volume)
            if not check.all_zero:
                raise OperationFailed(
                    'Failed to verify the wipe of %s: byte %d is not zero (verify proves that the volume reads as '
                    'zeros, which only algorithm=zero leaves behind; %s overwrote it with other patterns)'
                    % (label, check.first_nonzero, algorithm), verified=False, checked_bytes=check.checked)
            verified, checked = True, check.checked
    except OperationFailed as exc:
        exc.result.update(result, changed=changes.changed or exc.result.get('changed', False), duration=watch.rounded())
        raise
    result.update(wiped_bytes=facts.physical if changes.changed else 0, verified=verified, checked_bytes=checked,
                  changed=changes.changed, duration=watch.rounded())
    return result


# Info -------------------------------------------------------------------------

def volume_info(client, params):
    watch = Stopwatch()
    pool_name = check_name(params['pool'], 'pool name')
    name = check_name(params['name'], 'volume name')
    pool = lookup_pool(client, pool_name)
    refresh(pool)
    if name is not None:
        volume = client.volume(pool, name)
        if volume is None:
            raise OperationFailed('Failed to find volume %s in pool %s: it does not exist' % (name, pool_name))
        volumes = [(volume, VolumeFacts(client, volume))]
    else:
        volumes = _listed_volume_facts(client, pool)
    usage = StorageUsage(client)
    facts = [dict(volume_facts.result(), name=volume.name(), pool=pool_name,
                  users=usage.users(volume_facts.path, volume_facts.key)) for volume, volume_facts in volumes]
    return dict(changed=False, volumes=sorted(facts, key=lambda item: item['name']), duration=watch.rounded())


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
