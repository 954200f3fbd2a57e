# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who uses a volume: the one place that decides it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import stat
import struct

from ansible_collections.lifecycle.libvirt.plugins.module_utils import _xml
from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import OperationFailed, libvirt

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


# How a user uses a file (a user entry's `use`).
DISK = 'disk'              # the source of a disk
BACKING = 'backing'        # an image below a disk (or an overlay volume) in its backing chain
MIRROR = 'mirror'          # the target of a block copy of a disk
MEMORY = 'memory'          # a snapshot's memory file
SAME_FILE = 'same_file'    # another pool volume that is the same file under another name
OVERLAY = 'overlay'        # another pool volume whose backing chain reaches it
BOOT_FILES = ('kernel', 'initrd', 'dtb', 'loader', 'nvram')

# libvirt's codes for "it went away while we looked" (a transient domain
# that stopped, a snapshot or volume deleted meanwhile, a pool stopped):
# such a user is left out; any other error (a dropped connection) fails.
_VANISHED = ('VIR_ERR_NO_DOMAIN', 'VIR_ERR_NO_DOMAIN_SNAPSHOT', 'VIR_ERR_NO_STORAGE_POOL', 'VIR_ERR_NO_STORAGE_VOL')


def _vanished(exc):
    return exc.libvirt_code in set(getattr(libvirt, name) for name in _VANISHED)


class Identities:
    """Identity tokens of paths on the hypervisor, cached for one scan."""

    def __init__(self, client):
        self.client = client
        self.local = client.is_local
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
        volume = self.client.volume_by_path(path)
        if volume is not None:  # else no pool holds it: the other tokens decide
            yield ('volume', volume.key())

    def backing_of(self, path):
        """The path of the image `path` is an overlay of, or None.  Read from
        the qcow2 header when the file is ours to read (the way qemu finds it:
        a relative name is relative to the overlay's directory), else from the
        volume XML of the pool volume libvirt finds there."""
        if self.local:
            return _qcow2_backing(path)
        volume = self.client.volume_by_path(path)
        if volume is None:
            return None
        try:
            document = self.client.call('read the volume at %s' % path, volume.XMLDesc, 0)
        except OperationFailed as exc:
            if _vanished(exc):
                return None
            raise
        return _xml.parse_xml(document, 'volume XML').findtext('backingStore/path')

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
            return client.call('read the path of volume %s' % source.get('volume'), volume.path)
    return None


def _use(use, via, target=None):
    """How a user uses a file: `use` (one of the constants above), the disk
    `target` it belongs to (None for the others) and `via`, the same in words."""
    return dict(use=use, target=target, via=via)


def _disk_references(client, disk, what, target):
    """(use, use of the images below, path) of a disk's source, the
    backingStore chain libvirt reports below it, and the target of a block
    copy (mirror)."""
    below = _use(BACKING, 'backing chain of %s' % what, target)
    element, use = disk, _use(DISK, what, target)
    while element is not None:
        path = _source_path(client, element)
        if path:
            yield use, below, path
        element, use = element.find('backingStore'), below
    mirror = disk.find('mirror')
    if mirror is not None:
        path = mirror.get('file') or _source_path(client, mirror)
        if path:
            yield _use(MIRROR, 'mirror of %s' % what, target), below, path


def _domain_references(client, root, prefix=''):
    """(use, use of the images below, path) of everything a domain
    definition reads or writes on the host."""
    for disk in root.iter('disk'):
        target = disk.find('target')
        dev = target.get('dev') if target is not None else None
        yield from _disk_references(client, disk, '%sdisk %s' % (prefix, dev or '?'), dev)
    for tag in BOOT_FILES:
        for element in root.iter(tag):
            if element.text and element.text.strip().startswith('/'):
                yield _use(tag, prefix + tag), _use(BACKING, 'backing chain of %s%s' % (prefix, tag)), \
                    element.text.strip()


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
        self.volumes = []  # (identity tokens, pool name, volume name) of every pool volume
        for domain in client.domains():
            self._unless_vanished(self._claim_domain, domain)
        for pool in client.pools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE):  # only they list volumes
            for volume in self._unless_vanished(client.call, 'list volumes of pool %s' % pool.name(),
                                                pool.listAllVolumes, 0) or []:
                self._unless_vanished(self._claim_volume, pool.name(), volume)

    @staticmethod
    def _unless_vanished(operation, *args):
        try:
            return operation(*args)
        except OperationFailed as exc:
            if not _vanished(exc):
                raise
            return None

    def _claim(self, chain_top, user, use, below, skip_top=False):
        """`user` uses `chain_top` (as `use`) and every image below it (as `below`)."""
        for index, path in enumerate(self.ids.chain(chain_top)):
            if index == 0 and skip_top:
                continue
            self.claims.append((self.ids.of(path), dict(user, path=path, **(use if index == 0 else below))))

    def _claim_domain(self, domain):
        client, name = self.client, domain.name()
        what = 'read domain %s' % name
        running = bool(client.call(what, domain.isActive))
        documents = [client.call(what, domain.XMLDesc, 0)]
        if running and client.call(what, domain.isPersistent):
            documents.append(client.call(what, domain.XMLDesc, libvirt.VIR_DOMAIN_XML_INACTIVE))
        user = dict(kind='domain', name=name, domain=name, running=running)
        for document in documents:
            for use, below, path in _domain_references(client, _xml.parse_xml(document, 'domain XML')):
                self._claim(path, user, use, below)
        for snapshot in client.call('list the snapshots of domain %s' % name, domain.listAllSnapshots, 0):
            root = _xml.parse_xml(client.call('read a snapshot of domain %s' % name, snapshot.getXMLDesc, 0),
                                  'snapshot XML')
            user = dict(kind='snapshot', name=snapshot.getName(), domain=name, running=False)
            for disk in root.findall('disks/disk'):
                for use, below, path in _disk_references(client, disk, 'external file of disk %s'
                                                         % disk.get('name'), disk.get('name')):
                    self._claim(path, user, use, below)
            memory = root.find('memory')
            if memory is not None and memory.get('file'):
                self._claim(memory.get('file'), user, _use(MEMORY, 'memory file'), _use(MEMORY, 'memory file'))
            saved = root.find('domain')
            if saved is not None:
                for use, below, path in _domain_references(client, saved, 'saved '):
                    self._claim(path, user, use, below)

    def _claim_volume(self, pool_name, volume):
        user = dict(kind='volume', name='%s/%s' % (pool_name, volume.name()), domain=None, running=False,
                    key=volume.key())
        path = self.client.call('read the path of volume %s' % user['name'], volume.path)
        tokens = self.ids.of(path) | {('volume', volume.key())}
        self.volumes.append((tokens, pool_name, volume.name()))
        self.claims.append((tokens, dict(user, path=path, **_use(SAME_FILE, 'same file'))))
        self._claim(path, user, None, _use(OVERLAY, 'backing chain'), skip_top=True)

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

    def backing_chain(self, path):
        """The images below `path`, top first: each a dict with its path (as
        the image above names it) and, when it is a pool volume (by identity,
        whatever the spelling), the pool and name."""
        chain = []
        for below in self.ids.chain(path)[1:]:
            tokens = self.ids.of(below)
            pools = [(pool, name) for claim, pool, name in self.volumes if claim & tokens]
            pool, name = pools[0] if pools else (None, None)
            chain.append(dict(path=below, pool=pool, name=name))
        return chain


def volume_users(client, path, key=None):
    """Who uses the file or device at `path` (the volume `key`): a list of
    dicts with kind (domain, snapshot or volume), name, domain, running, use
    (how: disk, backing, mirror, kernel, initrd, dtb, loader, nvram, memory,
    same_file, overlay), target (the disk's target for disk, backing and
    mirror uses), via (the same in words) and path (as the user names it).
    The one place that decides it."""
    return StorageUsage(client).users(path, key)


def describe_user(user):
    if user['kind'] == 'domain':
        return 'domain %s (%s)' % (user['name'], user['via'])
    if user['kind'] == 'snapshot':
        return 'snapshot %s of domain %s (%s)' % (user['name'], user['domain'], user['via'])
    if user['use'] == SAME_FILE:
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
                              % (what, ', '.join(describe_user(user) for user in blocking)))
