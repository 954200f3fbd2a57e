# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who uses a volume: the one place that decides it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import stat
import struct

from ansible.module_utils.six.moves.urllib.parse import urlparse

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


def describe_user(user):
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
                              % (what, ', '.join(describe_user(user) for user in blocking)))
